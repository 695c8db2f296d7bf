/* test_dest.c — the receiver's destination (src/dest.h) through its header: name checks,
 * walks that refuse a symlink or a non-directory at any depth, a symlink swapped in after a
 * directory was cached, mkdir -p, the parent-fd cache past ESCP_DEST_CACHE entries without
 * leaking fds, -p directory records (children first, set-id bits only on directories this
 * session created, the byte cap that applies the oldest early), and the --restrict jail.
 * Everything happens in a fresh mkdtemp directory, removed at the end through fds (some
 * names there are longer than PATH_MAX from /). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "escp.h"
#include "dest.h"

#include "check.h"

static char base[64]; /* the test's temp dir */
static int base_fd = -1;

/* base/<formatted rel> in one of a few rotating buffers (several may be live in one call). */
static const char *P(const char *fmt, ...) {
  static char buf[8][PATH_MAX];
  static int next;
  char *b = buf[next++ % 8];
  int n = snprintf(b, PATH_MAX, "%s/", base);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, (size_t)(PATH_MAX - n), fmt, ap);
  va_end(ap);
  return b;
}

static void mk(const char *rel) { CHECK(mkdirat(base_fd, rel, 0755) == 0); }
static void ln(const char *target, const char *rel) { CHECK(symlinkat(target, base_fd, rel) == 0); }
static void touch(const char *rel) {
  int fd = openat(base_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  CHECK(fd >= 0);
  close(fd);
}
static int exists(const char *rel) {
  struct stat st;
  return fstatat(base_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}
static int is_dir(const char *rel) {
  struct stat st;
  return fstatat(base_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}
static struct stat st_of(int dfd, const char *rel) {
  struct stat st;
  CHECK(fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0);
  return st;
}
static int entries(const char *rel) { /* entries of a directory, "." and ".." not counted */
  DIR *d = opendir(P("%s", rel));
  CHECK(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return n;
}
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  CHECK(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory stream's own fd */
}

/* rm -r through fds (names may exceed PATH_MAX, modes may deny search); best effort. */
static void rm_at(int dfd, const char *name) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return;
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    fchmod(fd, 0700);
    DIR *d = fdopendir(fd);
    if (!d) {
      close(fd);
      return;
    }
    for (struct dirent *e; (e = readdir(d));)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rm_at(dirfd(d), e->d_name);
    closedir(d);
  }
  unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
}

static pid_t main_pid;
static void remove_base(void) { /* at exit, failed CHECKs included; not in forked children */
  if (getpid() != main_pid || !base[0]) return;
  int tfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd >= 0) rm_at(tfd, base + strlen("/tmp/"));
  if (tfd >= 0) close(tfd);
}

static escp_dest *dest_at(const char *rel) {
  escp_dest *d = escp_dest_new();
  CHECK(d);
  int err;
  CHECK_EQ(escp_dest_root(d, P("%s", rel), 0, &err), ESCP_OK);
  return d;
}

/* escp_dest_parent, the reference dropped again; *err_out gets errno (may be NULL). */
static int parent_rc(escp_dest *d, const char *rel, int create, int *err_out) {
  escp_dirref *ref = NULL;
  const char *leaf;
  int err = 0, rc = escp_dest_parent(d, rel, create, &ref, &leaf, &err);
  if (rc == ESCP_OK) escp_dest_put(d, ref);
  if (err_out) *err_out = err;
  return rc;
}

/* Create leaf in the directory escp_dest_parent hands out for rel: where writes land. */
static void create_through(escp_dest *d, const char *rel) {
  escp_dirref *ref;
  const char *leaf;
  int err;
  CHECK_EQ(escp_dest_parent(d, rel, 0, &ref, &leaf, &err), ESCP_OK);
  int fd = openat(escp_dirref_fd(ref), leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  close(fd);
  escp_dest_put(d, ref);
}

static void refused(escp_dest *d, const char *rel, int create) {
  int err;
  int rc = parent_rc(d, rel, create, &err);
  if (rc != ESCP_E_PATH) fprintf(stderr, "parent(%s, create=%d) = %d (errno %d)\n", rel, create, rc, err);
  CHECK_EQ(rc, ESCP_E_PATH);
}

static void meta_set(int64_t *m, int64_t mode, int64_t s, int64_t ns) {
  m[ESCP_META_MODE] = mode;
  m[ESCP_META_ATIME_S] = s - 1000, m[ESCP_META_ATIME_NS] = ns / 2;
  m[ESCP_META_MTIME_S] = s, m[ESCP_META_MTIME_NS] = ns;
}
static void expect_meta(int dfd, const char *rel, int64_t mode, int64_t s, int64_t ns) {
  struct stat st = st_of(dfd, rel);
  CHECK(S_ISDIR(st.st_mode));
  if ((int64_t)(st.st_mode & 07777) != mode) fprintf(stderr, "%s: mode %o, expected %llo\n", rel, st.st_mode & 07777, (long long)mode);
  CHECK_EQ(st.st_mode & 07777, mode);
  CHECK_EQ(st.st_mtim.tv_sec, s);
  CHECK_EQ(st.st_mtim.tv_nsec, ns);
  CHECK_EQ(st.st_atim.tv_sec, s - 1000);
  CHECK_EQ(st.st_atim.tv_nsec, ns / 2);
}

/* ---- names ---- */

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  CHECK(s);
  memset(s, c, n);
  s[n] = 0;
  return s;
}

/* A relative name of exactly len bytes: segments of `seg` bytes joined by "/". */
static char *long_name(size_t len, size_t seg) {
  char *s = repeat('n', len);
  for (size_t i = seg; i < len; i += seg + 1) s[i] = '/';
  if (s[len - 1] == '/') s[len - 1] = 'z';
  return s;
}

static void test_names(void) {
  static const char *bad[] = {"", ".", "..", "/", "/a", "a/", "a//b", "./a", "a/.", "a/./b",
                              "../a", "a/..", "a/../b", "//", "a/b/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (escp_dest_name_ok(bad[i])) fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
    CHECK(!escp_dest_name_ok(bad[i]));
  }
  static const char *good[] = {"a", "a/b/c", ".a", "..a", "a..", "...", "a/.b/..c", " ", "a b/ c"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) CHECK(escp_dest_name_ok(good[i]));
  char *s255 = repeat('s', 255), *s256 = repeat('s', 256);
  CHECK(escp_dest_name_ok(s255));
  CHECK(!escp_dest_name_ok(s256));
  char mid[600];
  snprintf(mid, sizeof mid, "a/%s/b", s255);
  CHECK(escp_dest_name_ok(mid));
  snprintf(mid, sizeof mid, "a/%s/b", s256);
  CHECK(!escp_dest_name_ok(mid));
  char *p4095 = long_name(ESCP_MAX_PATH, 200), *p4096 = long_name(ESCP_MAX_PATH + 1, 200);
  CHECK_EQ(strlen(p4095), 4095);
  CHECK(escp_dest_name_ok(p4095));
  CHECK(!escp_dest_name_ok(p4096));
  /* the walk refuses what the check refuses, before touching the disk */
  mk("names");
  escp_dest *d = dest_at("names");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refused(d, bad[i], 1);
  refused(d, s256, 1);
  refused(d, p4096, 1);
  int err;
  CHECK_EQ(escp_dest_mkdir(d, "..", NULL, 0, 0, &err), ESCP_E_PATH);
  CHECK_EQ(escp_dest_mkdir(d, "a/../b", NULL, 0, 0, &err), ESCP_E_PATH);
  CHECK_EQ(escp_dest_mkdir(d, "/abs", NULL, 0, 0, &err), ESCP_E_PATH);
  CHECK_EQ(entries("names"), 0);
  /* the longest accepted name really works: 4095 bytes, 20 nested directories */
  CHECK_EQ(parent_rc(d, p4095, 1, &err), ESCP_OK);
  create_through(d, p4095);
  int nfd = openat(base_fd, "names", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(nfd >= 0);
  CHECK(S_ISREG(st_of(nfd, p4095).st_mode));
  close(nfd);
  escp_dest_free(d);
  free(s255), free(s256), free(p4095), free(p4096);
}

/* ---- the root ---- */

static void test_root(void) {
  escp_dest *d = escp_dest_new();
  CHECK(d);
  int err;
  escp_dirref *ref;
  const char *leaf;
  CHECK_EQ(escp_dest_parent(d, "x", 1, &ref, &leaf, &err), ESCP_E_STATE); /* no root yet */
  CHECK_EQ(escp_dest_mkdir(d, "x", NULL, 0, 0, &err), ESCP_E_STATE);
  CHECK_EQ(escp_dest_root(d, P("no-such-root"), 0, &err), ESCP_E_SYS);
  CHECK_EQ(err, ENOENT);
  touch("root-file");
  CHECK_EQ(escp_dest_root(d, P("root-file"), 0, &err), ESCP_E_PATH); /* not a directory */
  CHECK_EQ(escp_dest_root(d, P("missing/deeper"), 1, &err), ESCP_E_SYS); /* its parent must exist */
  CHECK_EQ(err, ENOENT);
  CHECK(!exists("missing"));
  /* the root the user named is followed (scp does); only names below it are walked */
  mk("root-real");
  ln("root-real", "root-link");
  CHECK_EQ(escp_dest_root(d, P("root-link"), 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_root(d, P("root-real"), 0, &err), ESCP_E_STATE); /* once */
  create_through(d, "f");
  CHECK(exists("root-real/f"));
  escp_dest_free(d);
  d = escp_dest_new();
  CHECK_EQ(escp_dest_root(d, P("root-new"), 1, &err), ESCP_OK);
  CHECK(is_dir("root-new"));
  escp_dest_free(d);
  escp_dest_free(NULL);
}

/* ---- walks: a symlink or a non-directory anywhere below the root is refused ---- */

static void test_walk_refuses(void) {
  mk("w"), mk("w/a"), mk("w/a/b"), mk("w/a/b/c");
  mk("outside");
  ln(P("outside"), "w/s1");       /* first component */
  ln(P("outside"), "w/a/s2");     /* middle */
  ln(P("outside"), "w/a/b/s3");   /* parent of the leaf */
  ln("../outside", "w/a/b/c/rel"); /* relative */
  ln(P("w/a/b"), "w/a/in");       /* to a directory inside the root */
  ln("b", "w/a/in2");             /* the same, relative */
  ln(P("outside/nothing"), "w/dangling");
  touch("w/a/file");
  escp_dest *d = dest_at("w");
  static const char *rels[] = {
      "s1/x", "s1/sub/x", "a/s2/x", "a/s2/b/x", "a/b/s3/x", "a/b/c/rel/x", "a/in/x",
      "a/in/c/x", "a/in2/x", "dangling/x", "dangling/new/x", "a/file/x", "a/file/sub/x",
  };
  for (int create = 0; create <= 1; create++)
    for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) refused(d, rels[i], create);
  int err;
  static const char *dirs[] = {"s1", "a/s2", "a/b/s3", "a/in", "dangling", "a/file",
                               "s1/new", "a/b/s3/new", "dangling/new", "a/file/new"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    CHECK_EQ(escp_dest_mkdir(d, dirs[i], NULL, 0, 0, &err), ESCP_E_PATH);
    CHECK(err == ELOOP || err == ENOTDIR);
  }
  /* the same walks with every real directory on the way already cached */
  create_through(d, "a/b/c/ok");
  CHECK_EQ(escp_dest_mkdir(d, "a", NULL, 0, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "a/b", NULL, 0, 0, &err), ESCP_OK);
  for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) refused(d, rels[i], 1);
  CHECK_EQ(entries("outside"), 0); /* nothing was created through any link */
  CHECK(!exists("outside/nothing"));
  CHECK_EQ(entries("w/a/b/c"), 2); /* rel and ok */
  escp_dest_free(d);
}

/* A directory swapped for a symlink after it was walked: a cached fd keeps pointing at the
 * real directory; anything not cached is walked again and refused. */
static void test_swap_after_cache(void) {
  mk("sw"), mk("sw-out"), mk("sw-out/e");
  escp_dest *d = dest_at("sw");
  int err;
  CHECK_EQ(escp_dest_mkdir(d, "d", NULL, 0, 0, &err), ESCP_OK);    /* caches "d" */
  CHECK_EQ(escp_dest_mkdir(d, "d/e", NULL, 0, 0, &err), ESCP_OK);  /* caches "d/e" */
  CHECK_EQ(parent_rc(d, "t/u/x", 1, &err), ESCP_OK);            /* caches "t/u" only */
  ino_t real_d = st_of(base_fd, "sw/d").st_ino, real_e = st_of(base_fd, "sw/d/e").st_ino;
  CHECK(renameat(base_fd, "sw/d", base_fd, "sw/d.real") == 0);
  ln(P("sw-out"), "sw/d");
  CHECK(renameat(base_fd, "sw/t", base_fd, "sw/t.real") == 0);
  ln(P("sw-out"), "sw/t");
  /* cached: the real directories, wherever they went */
  escp_dirref *ref;
  const char *leaf;
  CHECK_EQ(escp_dest_parent(d, "d/e/y", 0, &ref, &leaf, &err), ESCP_OK);
  struct stat st;
  CHECK(fstat(escp_dirref_fd(ref), &st) == 0);
  CHECK_EQ(st.st_ino, real_e);
  escp_dest_put(d, ref);
  create_through(d, "d/e/y");
  CHECK(exists("sw/d.real/e/y"));
  CHECK_EQ(escp_dest_mkdir(d, "d/h", NULL, 0, 0, &err), ESCP_OK); /* from the cached "d" */
  CHECK(is_dir("sw/d.real/h"));
  CHECK_EQ(st_of(base_fd, "sw/d.real").st_ino, real_d);
  create_through(d, "t/u/z");
  CHECK(exists("sw/t.real/u/z"));
  /* not cached: walked from the root and refused at the symlink */
  refused(d, "t/v/x", 1);
  refused(d, "t/x", 1);
  CHECK_EQ(escp_dest_mkdir(d, "t/w", NULL, 0, 0, &err), ESCP_E_PATH);
  CHECK_EQ(entries("sw-out"), 1); /* still only e, and e still empty */
  CHECK_EQ(entries("sw-out/e"), 0);
  escp_dest_free(d);
}

static void test_mkdir_p(void) {
  mk("mp");
  escp_dest *d = dest_at("mp");
  int err;
  CHECK_EQ(escp_dest_mkdir(d, "p/q/r/s", NULL, 0, 0, &err), ESCP_OK);
  CHECK(is_dir("mp/p") && is_dir("mp/p/q") && is_dir("mp/p/q/r") && is_dir("mp/p/q/r/s"));
  CHECK_EQ(escp_dest_mkdir(d, "p/q/r/s", NULL, 0, 0, &err), ESCP_OK); /* existing: fine */
  CHECK_EQ(escp_dest_mkdir(d, "p/q", NULL, 0, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "", NULL, 0, 0, &err), ESCP_OK); /* the root itself */
  CHECK_EQ(st_of(base_fd, "mp/p/q").st_mode & 07777, 0755); /* 0777 minus the umask */
  CHECK_EQ(parent_rc(d, "m/n/o/f", 0, &err), ESCP_E_SYS); /* without create: missing */
  CHECK_EQ(err, ENOENT);
  CHECK(!exists("mp/m"));
  CHECK_EQ(parent_rc(d, "m/n/o/f", 1, &err), ESCP_OK);
  CHECK(is_dir("mp/m/n/o"));
  CHECK(!exists("mp/m/n/o/f")); /* the parent only */
  CHECK_EQ(parent_rc(d, "top", 0, &err), ESCP_OK); /* a name at the root: the root's own fd */
  escp_dest_free(d);
}

/* ---- the cache: more distinct directories than ESCP_DEST_CACHE, references held ---- */

#define NDIRS (2 * ESCP_DEST_CACHE + 44)
#define HELD (ESCP_DEST_CACHE + 72)

static void test_cache(void) {
  mk("cache"), mk("cache-out");
  int fds0 = count_fds();
  escp_dest *d = dest_at("cache");
  CHECK_EQ(count_fds(), fds0 + 1); /* the root */
  char rel[64];
  int err;
  for (int i = 0; i < NDIRS; i++) {
    snprintf(rel, sizeof rel, "c/%03d", i);
    CHECK_EQ(escp_dest_mkdir(d, rel, NULL, 0, 0, &err), ESCP_OK);
  }
  CHECK_EQ(count_fds(), fds0 + 1 + ESCP_DEST_CACHE); /* full, not more */
  static escp_dirref *held[HELD];
  for (int i = 0; i < HELD; i++) {
    snprintf(rel, sizeof rel, "c/%03d/f", i);
    const char *leaf;
    CHECK_EQ(escp_dest_parent(d, rel, 0, &held[i], &leaf, &err), ESCP_OK);
    CHECK(strcmp(leaf, "f") == 0);
  }
  /* every referenced fd is open and is its own directory (past the cache: one-off fds) */
  CHECK_EQ(count_fds(), fds0 + 1 + HELD);
  for (int i = 0; i < HELD; i++) {
    struct stat st;
    CHECK(fstat(escp_dirref_fd(held[i]), &st) == 0);
    snprintf(rel, sizeof rel, "cache/c/%03d", i);
    CHECK_EQ(st.st_ino, st_of(base_fd, rel).st_ino);
  }
  for (int i = 0; i < HELD; i++) escp_dest_put(d, held[i]);
  CHECK_EQ(count_fds(), fds0 + 1 + ESCP_DEST_CACHE);
  /* evict the oldest 100 (unreferenced now) and still resolve each name correctly */
  for (int i = HELD; i < NDIRS; i++) {
    snprintf(rel, sizeof rel, "c/%03d/f", i);
    create_through(d, rel);
    snprintf(rel, sizeof rel, "cache/c/%03d/f", i);
    CHECK(exists(rel));
  }
  CHECK_EQ(count_fds(), fds0 + 1 + ESCP_DEST_CACHE);
  /* an evicted directory swapped for a symlink is walked again and refused; a cached one
   * keeps its real directory */
  CHECK(renameat(base_fd, "cache/c/000", base_fd, "cache/c/000.real") == 0);
  ln(P("cache-out"), "cache/c/000");
  refused(d, "c/000/f", 1);
  CHECK(renameat(base_fd, "cache/c/127", base_fd, "cache/c/127.real") == 0);
  ln(P("cache-out"), "cache/c/127");
  create_through(d, "c/127/g");
  CHECK(exists("cache/c/127.real/g"));
  CHECK_EQ(entries("cache-out"), 0);
  escp_dest_free(d);
  CHECK_EQ(count_fds(), fds0); /* no fd leaked */
}

/* ---- -p directory records ---- */

/* Children before parents: a parent that ends without search permission (0600) must not
 * stop its descendants from getting their own mode and times. Run as a user without
 * CAP_DAC_OVERRIDE (root would walk through a 0600 directory anyway). */
static void meta_order_child(void) {
  escp_dest *d = dest_at("order");
  int64_t mp[ESCP_META_COUNT], mc[ESCP_META_COUNT], mg[ESCP_META_COUNT], mr[ESCP_META_COUNT];
  meta_set(mp, 0600, 1100000000, 111111111);
  meta_set(mc, 0500, 1200000000, 222222222);
  meta_set(mg, 0700, 1300000000, 333333333);
  meta_set(mr, 0750, 1400000000, 444444444);
  int err;
  CHECK_EQ(escp_dest_mkdir(d, "", mr, 1, 0, &err), ESCP_OK); /* records in the sender's order */
  CHECK_EQ(escp_dest_mkdir(d, "P", mp, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "P/c", mc, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "P/c/g", mg, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0);
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0); /* nothing kept twice */
  escp_dest_free(d);
}

static void test_meta_order(void) {
  mk("order");
  int drop = geteuid() == 0;
  if (drop) {
    CHECK(fchmodat(base_fd, ".", 0711, 0) == 0); /* nobody may pass through the temp dir */
    CHECK(fchownat(base_fd, "order", 65534, 65534, AT_SYMLINK_NOFOLLOW) == 0);
  }
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (drop && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)) {
      fprintf(stderr, "cannot become uid 65534: %s\n", strerror(errno));
      _exit(1);
    }
    meta_order_child();
    _exit(0);
  }
  int ws;
  CHECK(waitpid(pid, &ws, 0) == pid);
  CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  expect_meta(base_fd, "order/P/c/g", 0700, 1300000000, 333333333);
  expect_meta(base_fd, "order/P/c", 0500, 1200000000, 222222222);
  expect_meta(base_fd, "order/P", 0600, 1100000000, 111111111);
  expect_meta(base_fd, "order", 0750, 1400000000, 444444444);
}

/* Set-id and sticky bits only on directories this session created. */
static void test_setid(void) {
  mk("sid"), mk("sid/pre");
  CHECK(fchmodat(base_fd, "sid/pre", 0755, 0) == 0);
  escp_dest *d = dest_at("sid");
  int64_t m[ESCP_META_COUNT];
  int err;
  meta_set(m, 02755, 1500000000, 5);
  CHECK_EQ(escp_dest_mkdir(d, "made", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "pre", m, 1, 0, &err), ESCP_OK);
  meta_set(m, 05755, 1500000000, 5);
  CHECK_EQ(escp_dest_mkdir(d, "deep/made", m, 1, 0, &err), ESCP_OK); /* "deep" made on the way */
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0);
  escp_dest_free(d);
  expect_meta(base_fd, "sid/made", 02755, 1500000000, 5);
  expect_meta(base_fd, "sid/pre", 0755, 1500000000, 5);
  expect_meta(base_fd, "sid/deep/made", 05755, 1500000000, 5);
  CHECK_EQ(st_of(base_fd, "sid/deep").st_mode & 07777, 0755); /* no record: untouched */
  /* the root itself: set-id bits when this session created it, not otherwise */
  meta_set(m, 03777, 1600000000, 6);
  d = escp_dest_new();
  CHECK_EQ(escp_dest_root(d, P("sid/new-root"), 1, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0);
  escp_dest_free(d);
  expect_meta(base_fd, "sid/new-root", 03777, 1600000000, 6);
  d = escp_dest_new();
  CHECK_EQ(escp_dest_root(d, P("sid/pre"), 1, &err), ESCP_OK); /* exists: not created */
  CHECK_EQ(escp_dest_mkdir(d, "", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0);
  escp_dest_free(d);
  expect_meta(base_fd, "sid/pre", 0777, 1600000000, 6);
}

/* A directory swapped for a symlink before dirs_finish: its record is not applied through
 * the link (the target keeps its mode and times), and it counts as failed. */
static void test_meta_swapped(void) {
  mk("ms"), mk("ms-victim");
  touch("ms-victim-file");
  CHECK(fchmodat(base_fd, "ms-victim", 0700, 0) == 0);
  CHECK(fchmodat(base_fd, "ms-victim-file", 0600, 0) == 0);
  struct stat v0 = st_of(base_fd, "ms-victim"), f0 = st_of(base_fd, "ms-victim-file");
  escp_dest *d = dest_at("ms");
  int64_t m[ESCP_META_COUNT];
  int err;
  meta_set(m, 04777, 1000000000, 7);
  CHECK_EQ(escp_dest_mkdir(d, "a", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "a/b", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "c", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "k", m, 1, 0, &err), ESCP_OK);
  CHECK(renameat(base_fd, "ms/a", base_fd, "ms/a.real") == 0);
  ln(P("ms-victim"), "ms/a");
  CHECK(renameat(base_fd, "ms/c", base_fd, "ms/c.real") == 0);
  ln(P("ms-victim-file"), "ms/c");
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 3); /* a/b, a and c: refused at the link */
  escp_dest_free(d);
  expect_meta(base_fd, "ms/k", 04777, 1000000000, 7);
  struct stat v1 = st_of(base_fd, "ms-victim"), f1 = st_of(base_fd, "ms-victim-file");
  CHECK_EQ(v1.st_mode, v0.st_mode);
  CHECK_EQ(v1.st_mtim.tv_sec, v0.st_mtim.tv_sec);
  CHECK_EQ(v1.st_mtim.tv_nsec, v0.st_mtim.tv_nsec);
  CHECK_EQ(f1.st_mode, f0.st_mode);
  CHECK_EQ(f1.st_mtim.tv_sec, f0.st_mtim.tv_sec);
  CHECK_EQ(f1.st_mtim.tv_nsec, f0.st_mtim.tv_nsec);
  CHECK_EQ(st_of(base_fd, "ms/a.real").st_mode & 07777, 0755); /* not applied by name either */
}

/* A directory replaced by another real directory before dirs_finish (a local user renamed
 * the one escp made away and moved one of their choice, e.g. someone else's, to its name):
 * the record belongs to the directory escp made, so the newcomer keeps its mode and times. */
static void test_meta_replaced(void) {
  mk("mr"), mk("mr-victim");
  CHECK(fchmodat(base_fd, "mr-victim", 0700, 0) == 0);
  struct stat v0 = st_of(base_fd, "mr-victim");
  escp_dest *d = dest_at("mr");
  int64_t m[ESCP_META_COUNT];
  int err;
  meta_set(m, 0777, 1000000000, 8);
  CHECK_EQ(escp_dest_mkdir(d, "a", m, 1, 0, &err), ESCP_OK);
  CHECK_EQ(escp_dest_mkdir(d, "k", m, 1, 0, &err), ESCP_OK);
  CHECK(renameat(base_fd, "mr/a", base_fd, "mr/a.mine") == 0);
  CHECK(renameat(base_fd, "mr-victim", base_fd, "mr/a") == 0);
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 1);
  escp_dest_free(d);
  expect_meta(base_fd, "mr/k", 0777, 1000000000, 8);
  struct stat v1 = st_of(base_fd, "mr/a");
  CHECK_EQ(v1.st_ino, v0.st_ino);
  CHECK_EQ(v1.st_mode, v0.st_mode);
  CHECK_EQ(v1.st_mtim.tv_sec, v0.st_mtim.tv_sec);
  CHECK_EQ(v1.st_mtim.tv_nsec, v0.st_mtim.tv_nsec);
}

/* The byte cap: records hold at most ESCP_DEST_META_BYTES of names (each name + its NUL);
 * one more applies the oldest early. Names of 4095 bytes: the cap is 16,384 records, cheap
 * to make (the same directory recorded again and again), 64 MiB of memory. */
static void test_meta_cap(void) {
  size_t per = ESCP_MAX_PATH + 1, cap_records = ESCP_DEST_META_BYTES / per;
  CHECK_EQ(cap_records * per, ESCP_DEST_META_BYTES);
  char *x = long_name(ESCP_MAX_PATH, ESCP_MAX_SEGMENT), *y = strdup(x);
  CHECK(y);
  x[ESCP_MAX_PATH - 1] = 'x', y[ESCP_MAX_PATH - 1] = 'y'; /* siblings, 16 levels down */
  mk("cap");
  int cfd = openat(base_fd, "cap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(cfd >= 0);
  escp_dest *d = dest_at("cap");
  int64_t mx[ESCP_META_COUNT], my[ESCP_META_COUNT];
  meta_set(mx, 0705, 1700000000, 17);
  meta_set(my, 0750, 1800000000, 18);
  int err;
  CHECK_EQ(escp_dest_mkdir(d, x, mx, 1, 0, &err), ESCP_OK);
  for (size_t i = 1; i < cap_records; i++) CHECK_EQ(escp_dest_mkdir(d, y, my, 1, 0, &err), ESCP_OK);
  CHECK_EQ(st_of(cfd, x).st_mode & 07777, 0755); /* at the cap exactly: nothing applied yet */
  CHECK_EQ(escp_dest_mkdir(d, y, my, 1, 0, &err), ESCP_OK); /* one past it: the oldest goes now */
  expect_meta(cfd, x, 0705, 1700000000, 17);
  CHECK_EQ(st_of(cfd, y).st_mode & 07777, 0755); /* and only the oldest */
  CHECK_EQ(escp_dest_dirs_finish(d, NULL, 0), 0);
  expect_meta(cfd, y, 0750, 1800000000, 18);
  expect_meta(cfd, x, 0705, 1700000000, 17);
  escp_dest_free(d);
  close(cfd);
  free(x), free(y);
}

/* ---- the jail (server --restrict DIR) ---- */

static int probe(escp_dest *d, const char *path, int *kind) {
  int err;
  *kind = -1;
  return escp_dest_probe(d, path, kind, &err);
}

static void expect_kind(escp_dest *d, const char *path, int want) {
  int kind, rc = probe(d, path, &kind);
  if (rc != ESCP_OK || kind != want) fprintf(stderr, "probe(%s) = %d kind %d, expected kind %d\n", path, rc, kind, want);
  CHECK_EQ(rc, ESCP_OK);
  CHECK_EQ(kind, want);
}

static void test_jail(void) {
  mk("jail"), mk("jail/sub"), mk("jail/sub/deeper"), mk("jail-out");
  touch("jail/file");
  ln(P("jail-out"), "jail/link");
  ln("sub", "jail/inlink");
  ln("jail", "jail-alias");
  int err, kind;
  escp_dest *d = escp_dest_new();
  CHECK_EQ(escp_dest_jail(d, P("no-such-jail"), &err), ESCP_E_SYS);
  CHECK_EQ(err, ENOENT);
  CHECK_EQ(escp_dest_jail(d, P("jail-alias"), &err), ESCP_OK); /* the administrator's path: followed */
  expect_kind(d, "sub", ESCP_KIND_DIR);
  expect_kind(d, "/sub", ESCP_KIND_DIR); /* a leading "/" is the jail */
  expect_kind(d, "//sub/./deeper/", ESCP_KIND_DIR);
  expect_kind(d, "", ESCP_KIND_DIR);
  expect_kind(d, "/", ESCP_KIND_DIR);
  expect_kind(d, ".", ESCP_KIND_DIR);
  expect_kind(d, "file", ESCP_KIND_FILE);
  expect_kind(d, "link", ESCP_KIND_FILE); /* the link itself, not followed */
  expect_kind(d, "missing", ESCP_KIND_MISSING);
  expect_kind(d, "missing/x", ESCP_KIND_MISSING);
  expect_kind(d, P("jail/sub"), ESCP_KIND_MISSING); /* an absolute host path means DIR/<that> */
  static const char *bad[] = {"..", "/..", "../jail-out", "sub/../..", "sub/..", "link/x", "link/x/y",
                              "inlink/deeper", "file/x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = probe(d, bad[i], &kind);
    if (rc != ESCP_E_PATH) fprintf(stderr, "probe(%s) = %d\n", bad[i], rc);
    CHECK_EQ(rc, ESCP_E_PATH);
  }
  char *s256 = repeat('j', 256);
  CHECK_EQ(probe(d, s256, &kind), ESCP_E_PATH);
  /* roots beneath the jail */
  static const char *bad_roots[] = {"..", "/..", "../jail-out", "link", "link/new", "inlink", "file/new", "sub/../../x"};
  for (size_t i = 0; i < sizeof bad_roots / sizeof bad_roots[0]; i++) {
    int rc = escp_dest_root(d, bad_roots[i], 1, &err);
    if (rc != ESCP_E_PATH) fprintf(stderr, "root(%s) = %d\n", bad_roots[i], rc);
    CHECK_EQ(rc, ESCP_E_PATH);
  }
  CHECK_EQ(escp_dest_root(d, "nope/new", 1, &err), ESCP_E_SYS); /* a missing parent */
  CHECK_EQ(err, ENOENT);
  CHECK_EQ(entries("jail-out"), 0);
  CHECK(!exists("x") && !exists("new") && !exists("nope"));
  CHECK_EQ(escp_dest_root(d, "/sub/./deeper", 0, &err), ESCP_OK);
  create_through(d, "f");
  CHECK(exists("jail/sub/deeper/f"));
  escp_dest_free(d);
  /* "/" and "" are the jail itself; a new root is created beneath it */
  static const char *self[] = {"/", "", ".", "//./"};
  for (size_t i = 0; i < sizeof self / sizeof self[0]; i++) {
    d = escp_dest_new();
    CHECK_EQ(escp_dest_jail(d, P("jail"), &err), ESCP_OK);
    CHECK_EQ(escp_dest_root(d, self[i], 0, &err), ESCP_OK);
    char name[16];
    snprintf(name, sizeof name, "self%zu", i);
    create_through(d, name);
    CHECK(exists(P("jail/%s", name) + strlen(base) + 1));
    escp_dest_free(d);
  }
  d = escp_dest_new();
  CHECK_EQ(escp_dest_jail(d, P("jail"), &err), ESCP_OK);
  CHECK_EQ(escp_dest_root(d, "/made", 1, &err), ESCP_OK);
  CHECK(is_dir("jail/made"));
  refused(d, "../x", 1); /* below the root: the usual walk */
  escp_dest_free(d);
  /* without a jail an absolute path is the host's own (probe follows, as scp does) */
  d = escp_dest_new();
  expect_kind(d, P("jail/link"), ESCP_KIND_DIR);
  expect_kind(d, P("jail/none"), ESCP_KIND_MISSING);
  escp_dest_free(d);
  CHECK_EQ(entries("jail-out"), 0);
  free(s256);
}

int main(void) {
  umask(022);
  snprintf(base, sizeof base, "/tmp/escp-test-dest-XXXXXX");
  CHECK(mkdtemp(base));
  main_pid = getpid();
  atexit(remove_base);
  base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(base_fd >= 0);
  int fds0 = count_fds();
  test_names();
  test_root();
  test_walk_refuses();
  test_swap_after_cache();
  test_mkdir_p();
  test_cache();
  test_meta_order();
  test_setid();
  test_meta_swapped();
  test_meta_replaced();
  test_meta_cap();
  test_jail();
  CHECK_EQ(count_fds(), fds0);
  close(base_fd);
  fprintf(stderr, "test_dest: OK\n");
  return 0; /* remove_base runs at exit */
}
