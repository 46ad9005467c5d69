/* What a build's own processes write: preloaded into every build step
 * (LD_PRELOAD), it appends the path of each file opened for writing,
 * created, renamed, linked, removed or changed in mode to the file named by
 * SULTANA_TRACE, one absolute path a line. sultana then tells a file the
 * build wrote from one a developer changed while it ran, by what the
 * build's processes did rather than by timing. A program that does not
 * load it (static, or one that clears its environment) writes nothing
 * here: sultana then takes its changes for edits, which is never wrong,
 * only slower. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define LINE_MAX_BYTES (2 * PATH_MAX + 2)

static void append(char *line, size_t *len, const char *text)
{
    size_t n = strlen(text);
    if (*len + n >= LINE_MAX_BYTES - 1)
        n = LINE_MAX_BYTES - 2 - *len;
    memcpy(line + *len, text, n);
    *len += n;
    line[*len] = 0;
}

/* Record `path` (relative to `dirfd`, as the *at calls take it). errno is
 * kept as the traced call left it. */
static void record(int dirfd, const char *path)
{
    const char *log = getenv("SULTANA_TRACE");
    if (!log || !*log || !path || !*path)
        return;
    int saved = errno;
    char line[LINE_MAX_BYTES];
    size_t len = 0;
    line[0] = 0;
    if (path[0] != '/') {
        char base[PATH_MAX];
        base[0] = 0;
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base))
                base[0] = 0;
        } else {
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(proc, base, sizeof base - 1);
            base[n > 0 ? n : 0] = 0;
        }
        if (!base[0]) {
            errno = saved;
            return;
        }
        append(line, &len, base);
        append(line, &len, "/");
    }
    append(line, &len, path);
    if (strchr(line, '\n')) {
        /* A name with a newline cannot be written a line: mark the trace
         * incomplete so that sultana does not trust it. */
        len = 0;
        line[0] = 0;
        append(line, &len, "?incomplete");
    }
    append(line, &len, "\n");
    int fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        /* One write with O_APPEND: lines of parallel processes never mix. */
        syscall(SYS_write, fd, line, len);
        syscall(SYS_close, fd);
    }
    errno = saved;
}

static int writes(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

#define REAL(name, type) \
    static __typeof__(type) real_##name; \
    if (!real_##name) \
        real_##name = (type)dlsym(RTLD_NEXT, #name)

#define OPEN_LIKE(name) \
    int name(const char *path, int flags, ...) \
    { \
        mode_t mode = 0; \
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { \
            va_list ap; \
            va_start(ap, flags); \
            mode = va_arg(ap, mode_t); \
            va_end(ap); \
        } \
        REAL(name, int (*)(const char *, int, ...)); \
        int fd = real_##name(path, flags, mode); \
        if (fd >= 0 && writes(flags)) \
            record(AT_FDCWD, path); \
        return fd; \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)

#define OPENAT_LIKE(name) \
    int name(int dirfd, const char *path, int flags, ...) \
    { \
        mode_t mode = 0; \
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { \
            va_list ap; \
            va_start(ap, flags); \
            mode = va_arg(ap, mode_t); \
            va_end(ap); \
        } \
        REAL(name, int (*)(int, const char *, int, ...)); \
        int fd = real_##name(dirfd, path, flags, mode); \
        if (fd >= 0 && writes(flags)) \
            record(dirfd, path); \
        return fd; \
    }
OPENAT_LIKE(openat)
OPENAT_LIKE(openat64)

/* The fortified forms glibc's headers call under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags)
{
    REAL(__open_2, int (*)(const char *, int));
    int fd = real___open_2(path, flags);
    if (fd >= 0 && writes(flags))
        record(AT_FDCWD, path);
    return fd;
}
int __open64_2(const char *path, int flags)
{
    REAL(__open64_2, int (*)(const char *, int));
    int fd = real___open64_2(path, flags);
    if (fd >= 0 && writes(flags))
        record(AT_FDCWD, path);
    return fd;
}
int __openat_2(int dirfd, const char *path, int flags)
{
    REAL(__openat_2, int (*)(int, const char *, int));
    int fd = real___openat_2(dirfd, path, flags);
    if (fd >= 0 && writes(flags))
        record(dirfd, path);
    return fd;
}
int __openat64_2(int dirfd, const char *path, int flags)
{
    REAL(__openat64_2, int (*)(int, const char *, int));
    int fd = real___openat64_2(dirfd, path, flags);
    if (fd >= 0 && writes(flags))
        record(dirfd, path);
    return fd;
}

#define CREAT_LIKE(name) \
    int name(const char *path, mode_t mode) \
    { \
        REAL(name, int (*)(const char *, mode_t)); \
        int fd = real_##name(path, mode); \
        if (fd >= 0) \
            record(AT_FDCWD, path); \
        return fd; \
    }
CREAT_LIKE(creat)
CREAT_LIKE(creat64)

static int mode_writes(const char *mode)
{
    return mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
}

#define FOPEN_LIKE(name) \
    FILE *name(const char *path, const char *mode) \
    { \
        REAL(name, FILE * (*)(const char *, const char *)); \
        FILE *f = real_##name(path, mode); \
        if (f && mode_writes(mode)) \
            record(AT_FDCWD, path); \
        return f; \
    }
FOPEN_LIKE(fopen)
FOPEN_LIKE(fopen64)

#define FREOPEN_LIKE(name) \
    FILE *name(const char *path, const char *mode, FILE *stream) \
    { \
        REAL(name, FILE * (*)(const char *, const char *, FILE *)); \
        FILE *f = real_##name(path, mode, stream); \
        if (f && path && mode_writes(mode)) \
            record(AT_FDCWD, path); \
        return f; \
    }
FREOPEN_LIKE(freopen)
FREOPEN_LIKE(freopen64)

int rename(const char *from, const char *to)
{
    REAL(rename, int (*)(const char *, const char *));
    int r = real_rename(from, to);
    if (r == 0) {
        record(AT_FDCWD, from);
        record(AT_FDCWD, to);
    }
    return r;
}
int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    REAL(renameat, int (*)(int, const char *, int, const char *));
    int r = real_renameat(fromfd, from, tofd, to);
    if (r == 0) {
        record(fromfd, from);
        record(tofd, to);
    }
    return r;
}
int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags)
{
    REAL(renameat2, int (*)(int, const char *, int, const char *, unsigned int));
    int r = real_renameat2(fromfd, from, tofd, to, flags);
    if (r == 0) {
        record(fromfd, from);
        record(tofd, to);
    }
    return r;
}

#define ONE_PATH(name, args, call, path) \
    int name args \
    { \
        REAL(name, int (*) args); \
        int r = real_##name call; \
        if (r == 0) \
            record(AT_FDCWD, path); \
        return r; \
    }
ONE_PATH(unlink, (const char *path), (path), path)
ONE_PATH(remove, (const char *path), (path), path)
ONE_PATH(rmdir, (const char *path), (path), path)
ONE_PATH(mkdir, (const char *path, mode_t mode), (path, mode), path)
ONE_PATH(chmod, (const char *path, mode_t mode), (path, mode), path)
ONE_PATH(truncate, (const char *path, off_t length), (path, length), path)
ONE_PATH(truncate64, (const char *path, off64_t length), (path, length), path)
ONE_PATH(link, (const char *from, const char *to), (from, to), to)
ONE_PATH(symlink, (const char *target, const char *path), (target, path), path)

#define AT_PATH(name, args, call, dirfd, path) \
    int name args \
    { \
        REAL(name, int (*) args); \
        int r = real_##name call; \
        if (r == 0) \
            record(dirfd, path); \
        return r; \
    }
AT_PATH(unlinkat, (int dirfd, const char *path, int flags), (dirfd, path, flags), dirfd, path)
AT_PATH(mkdirat, (int dirfd, const char *path, mode_t mode), (dirfd, path, mode), dirfd, path)
AT_PATH(fchmodat, (int dirfd, const char *path, mode_t mode, int flags), (dirfd, path, mode, flags), dirfd, path)
AT_PATH(linkat, (int fromfd, const char *from, int tofd, const char *to, int flags), (fromfd, from, tofd, to, flags), tofd, to)
AT_PATH(symlinkat, (const char *target, int dirfd, const char *path), (target, dirfd, path), dirfd, path)

/* mkstemp and friends open through glibc's own internal calls. */
#define MKSTEMP_LIKE(name, args, call) \
    int name args \
    { \
        REAL(name, int (*) args); \
        int fd = real_##name call; \
        if (fd >= 0) \
            record(AT_FDCWD, tmpl); \
        return fd; \
    }
MKSTEMP_LIKE(mkstemp, (char *tmpl), (tmpl))
MKSTEMP_LIKE(mkstemp64, (char *tmpl), (tmpl))
MKSTEMP_LIKE(mkostemp, (char *tmpl, int flags), (tmpl, flags))
MKSTEMP_LIKE(mkostemp64, (char *tmpl, int flags), (tmpl, flags))
MKSTEMP_LIKE(mkstemps, (char *tmpl, int suffixlen), (tmpl, suffixlen))
MKSTEMP_LIKE(mkostemps, (char *tmpl, int suffixlen, int flags), (tmpl, suffixlen, flags))
