/* A disk whose fsyncs stall: while the file named by $WATERMETER_TEST_HOLD exists,
 * every fsync, fdatasync and sync_file_range waits. Preloaded into the binary by
 * slow_disk.rs to play an SD card that takes seconds to sync. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void hold(void) {
    const char *path = getenv("WATERMETER_TEST_HOLD");
    struct stat st;
    if (path == NULL) return;
    while (stat(path, &st) == 0) usleep(10000);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    hold();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    hold();
    return real(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
    static int (*real)(int, off64_t, off64_t, unsigned int);
    if (!real) real = (int (*)(int, off64_t, off64_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    hold();
    return real(fd, offset, nbytes, flags);
}
