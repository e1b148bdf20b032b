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
 * call. The asynchronous form runs the copy on libuv's thread pool, so the
 * JavaScript thread does other work (an image's SBOM) while the kernel copies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct copy_args {
  int32_t fd_in, fd_out;
  int64_t pos_in, pos_out, length;
};

static int read_args(napi_env env, napi_callback_info info, struct copy_args *a) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5 ||
      napi_get_value_int32(env, argv[0], &a->fd_in) != napi_ok ||
      napi_get_value_int64(env, argv[1], &a->pos_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &a->fd_out) != napi_ok ||
      napi_get_value_int64(env, argv[3], &a->pos_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &a->length) != napi_ok || a->pos_in < 0 || a->pos_out < 0 || a->length < 0) {
    napi_throw_type_error(env, "EINVAL", "copyFileRange(fdIn, posIn, fdOut, posOut, length): five non-negative integers");
    return 0;
  }
  return 1;
}

/* Copy up to a->length bytes; returns the bytes copied (fewer only at the end of the input), or -errno. */
static int64_t copy(const struct copy_args *a) {
  off64_t in = a->pos_in, out = a->pos_out;
  int64_t left = a->length;
  while (left > 0) {
    ssize_t n = copy_file_range(a->fd_in, &in, a->fd_out, &out, (size_t)(left > (1 << 30) ? (1 << 30) : left), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    left -= n;
  }
  return a->length - left;
}

/* The errno's name ("EXDEV"), which kiln's JavaScript matches on. */
static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name) return name;
#endif
  switch (err) {
    case EXDEV: return "EXDEV";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case ENOSPC: return "ENOSPC";
    case ECANCELED: return "ECANCELED";
    default: return "EIO";
  }
}

static napi_value error_of(napi_env env, int err) {
  char msg[160];
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "copy_file_range: %s", strerror(err));
  napi_value code, text, e;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  return e;
}

/* copyFileRange(fdIn, posIn, fdOut, posOut, length) → bytes copied. */
static napi_value copy_range(napi_env env, napi_callback_info info) {
  struct copy_args a;
  if (!read_args(env, info, &a)) return NULL;
  int64_t n = copy(&a);
  if (n < 0) {
    napi_throw(env, error_of(env, (int)-n));
    return NULL;
  }
  napi_value result;
  napi_create_int64(env, n, &result);
  return result;
}

struct copy_job {
  struct copy_args args;
  int64_t result;
  napi_deferred deferred;
  napi_async_work work;
};

static void run_job(napi_env env, void *data) {
  (void)env;
  struct copy_job *j = data;
  j->result = copy(&j->args);
}

static void finish_job(napi_env env, napi_status status, void *data) {
  struct copy_job *j = data;
  if (status != napi_ok) {
    napi_reject_deferred(env, j->deferred, error_of(env, ECANCELED));
  } else if (j->result < 0) {
    napi_reject_deferred(env, j->deferred, error_of(env, (int)-j->result));
  } else {
    napi_value v;
    napi_create_int64(env, j->result, &v);
    napi_resolve_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  free(j);
}

/* copyFileRangeAsync(fdIn, posIn, fdOut, posOut, length) → Promise of bytes copied; the copy runs on libuv's thread pool. */
static napi_value copy_range_async(napi_env env, napi_callback_info info) {
  struct copy_job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (!read_args(env, info, &j->args)) {
    free(j);
    return NULL;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    free(j);
    napi_throw_error(env, "EIO", "copyFileRangeAsync: cannot create a promise");
    return NULL;
  }
  if (napi_create_string_utf8(env, "kiln.copyFileRange", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run_job, finish_job, j, &j->work) != napi_ok) {
    napi_reject_deferred(env, j->deferred, error_of(env, EIO));
    free(j);
    return promise;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_reject_deferred(env, j->deferred, error_of(env, EIO));
    napi_delete_async_work(env, j->work);
    free(j);
  }
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "copyFileRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRange", fn);
  napi_create_function(env, "copyFileRangeAsync", NAPI_AUTO_LENGTH, copy_range_async, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRangeAsync", fn);
  return exports;
}
