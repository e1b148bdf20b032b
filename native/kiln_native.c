/*
 * kiln's native helper: a tar's bytes assembled and written off the JavaScript
 * thread.
 *
 * Written by hand because Node's fs has nothing like it and no npm package
 * does it: composing a root file system writes hundreds of MB made of
 * thousands of pieces (tar headers made by kiln, file bodies at known offsets
 * of layer blobs). JavaScript plans the pieces (a "segment list"); this module
 * writes them on a copy thread of its own: large file pieces with
 * copy_file_range (in the kernel, as `cat` does), small ones and kiln's bytes
 * gathered in a staging buffer (pread, memcpy) and written with pwrite. The
 * JavaScript thread meanwhile plans on and makes the image's SBOM; it never
 * touches a body's bytes.
 * One thread, measured on this 2-core VM (413 MB into one ext4 file): two
 * threads writing 64 KiB pieces were at best 0.13-0.15 s against 0.17-0.19 s
 * for one copy_file_range, but they spin on the file's inode lock and take
 * the core the JavaScript thread needs (composing was slower, not faster);
 * two copy_file_range threads are no faster than one.
 * The thread is kiln's own rather than one of libuv's pool, so that it goes on
 * while the JavaScript thread is busy and leaves the pool to the rest of kiln.
 * Parts finish in the order given (a part is retired only after the ones
 * before it), so "how much of the file is complete" is one number, which the
 * thread stores where the tar's hashing thread reads it.
 * kiln works without this module (src/compose/tar-writer.ts then does the
 * same reads and writes itself, on the JavaScript thread).
 * For the main thread only: the queue and the copy thread are the process's,
 * and a worker thread's heap could go away under a job it gave (kiln loads
 * the module on its main thread alone).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The staging buffer, and so the size of each write of small pieces. Small:
 * on this VM (a 6.18 kernel whose page cache takes large folios) big writes
 * made the kernel fill the file with big folios, and right after other big
 * files were deleted those came from memory the host had taken back: 413 MB
 * written in 1 MiB writes took 0.85-1.15 s instead of 0.10-0.13 s; 64 KiB
 * writes stay near copy_file_range's time (bench/RESULTS.md, 2026-12-04).
 */
#define STAGE (64 << 10)
/* Pieces from a file of at least this size are copied in the kernel (copy_file_range, as `cat` does). */
#define DIRECT_MIN (64 << 10)
/* A plan is cut into parts of this size; a copy thread takes the next part, and progress is told per part. */
#define PART (4 << 20)
/* Copy threads (see above for why one). */
#define THREADS 1

/* An input that ended before the plan said: not an errno, reported with its own code. */
#define SHORT_INPUT (-1)

/* Where a copy failed: the file descriptor and the offset in it. */
struct failure {
  int32_t fd;
  int64_t at;
};

struct seg_job {
  int32_t out_fd;
  int64_t out_pos;      /* where byte 0 of the plan goes in the output */
  double *segs;         /* triples: source (fd ≥ 0, or -1-i for buffer i), offset, length (a copy: the caller's array may change) */
  size_t nsegs;
  uint8_t **bufs;
  size_t nbufs;
  int64_t total;        /* the plan's length */
  int64_t *progress;    /* where to store how much of the file is complete, or NULL */
  int err;              /* the first failure: errno, SHORT_INPUT, or 0 */
  struct failure where; /* … and where (a part keeps its own until it can record it under the lock) */
  int parts_left;       /* retired by the threads; the last one reports to JavaScript */
  int direct;           /* large pieces still copied in the kernel (until copy_file_range says it cannot) */
  napi_ref keep[2];     /* the buffer list and the progress array stay alive while the thread uses them */
  napi_deferred deferred;
  napi_threadsafe_function done;
};

struct part {
  struct seg_job *job;
  int64_t from, to;     /* bytes of the job's plan */
  int finished;
  struct part *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
/* Parts in the order given: head is the oldest not retired, next the first not started. */
static struct part *head, *next, *tail;
static int threads_started;

static int flush(const struct seg_job *j, const uint8_t *stage, size_t used, int64_t *out, struct failure *f) {
  size_t done = 0;
  while (done < used) {
    ssize_t n = pwrite(j->out_fd, stage + done, used - done, *out + (int64_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      f->fd = j->out_fd;
      f->at = *out + (int64_t)done;
      return n < 0 ? errno : EIO;
    }
    done += (size_t)n;
  }
  *out += (int64_t)used;
  return 0;
}

/* Write bytes [from, to) of a job's plan; 0, or what failed (`f` says where). */
static int copy_part(struct seg_job *j, int64_t from, int64_t to, uint8_t *stage, struct failure *f) {
  size_t used = 0;
  int64_t out = j->out_pos + from;
  int64_t pos = 0; /* where the current segment starts in the plan */
  for (size_t i = 0; i < j->nsegs && pos < to; i++) {
    int64_t src = (int64_t)j->segs[3 * i], off = (int64_t)j->segs[3 * i + 1], len = (int64_t)j->segs[3 * i + 2];
    int64_t a = pos > from ? pos : from, b = pos + len < to ? pos + len : to;
    int64_t at = off + (a - pos), left = b - a;
    pos += len;
    if (src >= 0 && left >= DIRECT_MIN && __atomic_load_n(&j->direct, __ATOMIC_RELAXED)) {
      int e = flush(j, stage, used, &out, f);
      if (e) return e;
      used = 0;
      off64_t in = at, o = out;
      while (left > 0) {
        ssize_t n = copy_file_range((int)src, &in, j->out_fd, &o, (size_t)left, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* not between these files (EXDEV …) or a short input: the buffer below copies the rest, or says why */
        left -= n;
      }
      if (left > 0 && o == out) __atomic_store_n(&j->direct, 0, __ATOMIC_RELAXED); /* nothing copied: this file system pair cannot; no more tries */
      at = in;
      out = o;
    }
    while (left > 0) {
      if (used == STAGE) {
        int e = flush(j, stage, used, &out, f);
        if (e) return e;
        used = 0;
      }
      size_t k = (size_t)(left < (int64_t)(STAGE - used) ? left : (int64_t)(STAGE - used));
      if (src >= 0) {
        ssize_t n = pread((int)src, stage + used, k, at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          f->fd = (int32_t)src;
          f->at = at;
          return n < 0 ? errno : SHORT_INPUT;
        }
        k = (size_t)n;
      } else {
        memcpy(stage + used, j->bufs[-1 - src] + at, k);
      }
      used += k;
      at += (int64_t)k;
      left -= (int64_t)k;
    }
  }
  return flush(j, stage, used, &out, f);
}

/*
 * A progress cell that a failed job has marked (-1): the file has a hole
 * there, so no later plan of the same file may claim it complete, and later
 * plans of that file are not copied (their writer fails on the first error).
 */
static int poisoned(const struct seg_job *j) {
  return j->progress && __atomic_load_n(j->progress, __ATOMIC_ACQUIRE) < 0;
}

static void *copy_thread(void *arg) {
  (void)arg;
  uint8_t *stage = NULL;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!next) pthread_cond_wait(&work, &mu);
    struct part *p = next;
    next = p->next;
    struct seg_job *j = p->job;
    /* a part of a job that already failed is not copied; the job reports the first failure */
    int skip = j->err != 0 || poisoned(j);
    pthread_mutex_unlock(&mu);
    struct failure f = {0, 0};
    if (!stage) stage = malloc(STAGE);
    int e = skip ? 0 : !stage ? ENOMEM : copy_part(j, p->from, p->to, stage, &f);
    pthread_mutex_lock(&mu);
    if (e && !j->err) {
      j->err = e;
      j->where = f;
    }
    p->finished = 1;
    while (head && head->finished) {
      struct part *r = head;
      head = r->next;
      if (!head) tail = NULL;
      struct seg_job *rj = r->job;
      if (rj->progress) {
        if (rj->err) __atomic_store_n(rj->progress, -1, __ATOMIC_RELEASE);
        else if (!poisoned(rj)) __atomic_store_n(rj->progress, rj->out_pos + r->to, __ATOMIC_RELEASE);
      }
      if (--rj->parts_left == 0) {
        /* the job may be freed by the JavaScript thread as soon as it is reported: keep its function first */
        napi_threadsafe_function done = rj->done;
        napi_call_threadsafe_function(done, rj, napi_tsfn_nonblocking);
        napi_release_threadsafe_function(done, napi_tsfn_release);
      }
      free(r);
    }
  }
  return NULL;
}

/* The errno's name ("EBADF"), which kiln's JavaScript matches on. */
static const char *errno_name(int err) {
  if (err == SHORT_INPUT) return "ESHORTINPUT";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name) return name;
#endif
  switch (err) {
    case EBADF: return "EBADF";
    case ENOSPC: return "ENOSPC";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ECANCELED: return "ECANCELED";
    default: return "EIO";
  }
}

static napi_value error_of(napi_env env, const struct seg_job *j) {
  char msg[200];
  if (j->err == SHORT_INPUT)
    snprintf(msg, sizeof msg, "input (fd %d) ended before offset %lld", (int)j->where.fd, (long long)j->where.at);
  else
    snprintf(msg, sizeof msg, "%s (fd %d at offset %lld)", strerror(j->err), (int)j->where.fd, (long long)j->where.at);
  napi_value code, text, e, fd, at;
  napi_create_string_utf8(env, errno_name(j->err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  napi_create_int32(env, j->where.fd, &fd);
  napi_create_int64(env, j->where.at, &at);
  napi_set_named_property(env, e, "fd", fd);
  napi_set_named_property(env, e, "offset", at);
  return e;
}

static void free_job(napi_env env, struct seg_job *j) {
  for (int k = 0; k < 2; k++)
    if (j->keep[k]) napi_delete_reference(env, j->keep[k]);
  free(j->segs);
  free(j->bufs);
  free(j);
}

/* On the JavaScript thread, once the job's last part is retired: settle its promise. */
static void report(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  struct seg_job *j = data;
  if (env) { /* NULL when the environment is going away: nobody is waiting */
    if (j->err) {
      napi_reject_deferred(env, j->deferred, error_of(env, j));
    } else {
      napi_value undef;
      napi_get_undefined(env, &undef);
      napi_resolve_deferred(env, j->deferred, undef);
    }
    free_job(env, j);
  }
}

static napi_value bad_args(napi_env env, struct seg_job *j, const char *why) {
  free_job(env, j);
  char msg[300];
  snprintf(msg, sizeof msg, "writeSegments(outFd, outPos, segments: Float64Array, buffers: Buffer[], progress?: BigInt64Array): %s", why);
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

static int start_threads(void) {
  if (threads_started) return 1;
  for (int i = 0; i < THREADS; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&t, &attr, copy_thread, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) return threads_started > 0; /* fewer threads still copy everything */
    threads_started++;
  }
  return 1;
}

/*
 * writeSegments(outFd, outPos, segments, buffers, progress?) → Promise<void>:
 * the plan written at outPos by the copy threads. `segments` holds triples
 * (source, offset, length) laid end to end from the plan's byte 0; a source
 * ≥ 0 is a file descriptor read with pread, -1-i is buffers[i]. `progress`
 * (a shared BigInt64Array's first element), when given, is set to the file
 * offset up to which this plan (and every plan given before it) is written,
 * or to -1 once a plan with that cell failed (then it stays -1, and later
 * plans with that cell are not copied). The buffers must stay as they are
 * until the promise settles (not transferred, not written over).
 */
static napi_value write_segments(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  struct seg_job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_typedarray_type type;
  size_t count;
  void *data;
  uint32_t nbufs;
  bool is_array;
  napi_valuetype progress_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &j->out_fd) != napi_ok || napi_get_value_int64(env, argv[1], &j->out_pos) != napi_ok || j->out_pos < 0)
    return bad_args(env, j, "outFd and outPos are numbers, outPos ≥ 0");
  if (napi_get_typedarray_info(env, argv[2], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_float64_array || count % 3)
    return bad_args(env, j, "segments is a Float64Array of triples");
  j->nsegs = count / 3;
  j->segs = malloc(j->nsegs ? j->nsegs * 3 * sizeof(double) : sizeof(double));
  if (!j->segs) return bad_args(env, j, "out of memory");
  memcpy(j->segs, data, j->nsegs * 3 * sizeof(double)); /* checked below and read by the thread: the caller may reuse its array */
  if (napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &nbufs) != napi_ok)
    return bad_args(env, j, "buffers is an array");
  if (argc > 4 && napi_typeof(env, argv[4], &progress_type) == napi_ok && progress_type != napi_undefined) {
    if (napi_get_typedarray_info(env, argv[4], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_bigint64_array || count < 1)
      return bad_args(env, j, "progress is a BigInt64Array");
    j->progress = data;
  }
  j->nbufs = nbufs;
  j->bufs = calloc(nbufs ? nbufs : 1, sizeof *j->bufs);
  size_t *lens = calloc(nbufs ? nbufs : 1, sizeof *lens);
  if (!j->bufs || !lens) {
    free(lens);
    return bad_args(env, j, "out of memory");
  }
  for (uint32_t i = 0; i < nbufs; i++) {
    napi_value b;
    bool is_buffer;
    if (napi_get_element(env, argv[3], i, &b) != napi_ok || napi_is_buffer(env, b, &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, b, (void **)&j->bufs[i], &lens[i]) != napi_ok) {
      free(lens);
      return bad_args(env, j, "buffers holds Buffers only");
    }
  }
  /* every piece checked here, on the JavaScript thread: the copy thread trusts the plan. Offsets
     and lengths stay within 2^53 (exact in a double, far from int64's end), and so do the sums. */
  const double MAX = 9007199254740992.0;
  const char *bad = NULL;
  double total = 0;
  for (size_t i = 0; i < j->nsegs && !bad; i++) {
    double src = j->segs[3 * i], off = j->segs[3 * i + 1], len = j->segs[3 * i + 2];
    if (!(off >= 0 && off <= MAX && len >= 0 && len <= MAX && src > -4294967296.0 && src < 2147483648.0) || off != (double)(int64_t)off ||
        len != (double)(int64_t)len || src != (double)(int64_t)src)
      bad = "a segment's source, offset and length are whole numbers, offset and length in [0, 2^53]";
    else if (src < 0 && (-1 - src >= nbufs || off + len > (double)lens[(size_t)(-1 - src)]))
      bad = "a buffer segment lies outside its buffer";
    else if ((total += len) + (double)j->out_pos > MAX)
      bad = "the plan ends beyond 2^53 bytes";
  }
  j->total = (int64_t)total;
  if (!bad && (j->total + PART - 1) / PART > INT32_MAX) bad = "the plan has too many parts";
  free(lens);
  if (bad) return bad_args(env, j, bad);
  pthread_mutex_lock(&mu);
  int started = start_threads();
  pthread_mutex_unlock(&mu);
  if (!started) {
    free_job(env, j);
    napi_throw_error(env, "EAGAIN", "writeSegments: cannot start a copy thread");
    return NULL;
  }
  napi_value promise, name;
  for (int k = 0; k < (j->progress ? 2 : 1); k++)
    if (napi_create_reference(env, argv[3 + k], 1, &j->keep[k]) != napi_ok) return bad_args(env, j, "cannot hold the arguments");
  if (napi_create_string_utf8(env, "kiln.writeSegments", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, report, &j->done) != napi_ok)
    return bad_args(env, j, "cannot make the report function");
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    napi_release_threadsafe_function(j->done, napi_tsfn_abort);
    return bad_args(env, j, "cannot make a promise");
  }
  /* cut into parts, queued behind every part given before */
  int64_t nparts = j->total ? (j->total + PART - 1) / PART : 1;
  struct part *first = NULL, *last = NULL;
  for (int64_t i = 0; i < nparts; i++) {
    struct part *p = calloc(1, sizeof *p);
    if (!p) {
      while (first) {
        struct part *n = first->next;
        free(first);
        first = n;
      }
      j->err = ENOMEM;
      napi_reject_deferred(env, j->deferred, error_of(env, j));
      napi_release_threadsafe_function(j->done, napi_tsfn_abort);
      free_job(env, j);
      return promise;
    }
    p->job = j;
    p->from = i * PART;
    p->to = (i + 1) * PART < j->total ? (i + 1) * PART : j->total;
    if (last) last->next = p;
    else first = p;
    last = p;
  }
  j->parts_left = (int)nparts;
  j->direct = 1;
  pthread_mutex_lock(&mu);
  if (tail) tail->next = first;
  else head = first;
  tail = last;
  if (!next) next = first;
  pthread_cond_broadcast(&work);
  pthread_mutex_unlock(&mu);
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "writeSegments", NAPI_AUTO_LENGTH, write_segments, NULL, &fn);
  napi_set_named_property(env, exports, "writeSegments", fn);
  return exports;
}
