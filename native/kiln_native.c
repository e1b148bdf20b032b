/*
 * kiln's native helper: copy_file_range(2) with explicit offsets.
 *
 * Written by hand because Node's fs has no ranged in-kernel copy (fs.copyFile
 * copies whole files only) and no npm package offers one. Composing a root
 * file system copies hundreds of MB of file bodies from layer blobs into
 * rootfs.tar; in the kernel that is one page-cache copy (or a reflink, on file
 * systems that share extents), through user space it is two copies and twice
 * the syscalls. kiln works without this module (src/core/native.ts falls back
 * to read/write); it only makes the copy as fast as `cat`, which uses the same
 * call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static napi_value fail(napi_env env, int err, const char *what) {
  char msg[160];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

/* copyFileRange(fdIn, posIn, fdOut, posOut, length) → bytes copied (fewer only at the end of fdIn). */
static napi_value copy_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd_in, fd_out;
  int64_t pos_in, pos_out, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &fd_in) != napi_ok ||
      napi_get_value_int64(env, argv[1], &pos_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &fd_out) != napi_ok ||
      napi_get_value_int64(env, argv[3], &pos_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &length) != napi_ok || pos_in < 0 || pos_out < 0 || length < 0) {
    napi_throw_type_error(env, "EINVAL", "copyFileRange(fdIn, posIn, fdOut, posOut, length): five non-negative integers");
    return NULL;
  }
  off64_t in = pos_in, out = pos_out;
  int64_t left = length;
  while (left > 0) {
    ssize_t n = copy_file_range(fd_in, &in, fd_out, &out, (size_t)(left > (1 << 30) ? (1 << 30) : left), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(env, errno, "copy_file_range");
    }
    if (n == 0) break;
    left -= n;
  }
  napi_value result;
  napi_create_int64(env, length - left, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "copyFileRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRange", fn);
  return exports;
}
