#define _GNU_SOURCE
#include <unistd.h>
#include "CShims.h"

int drkit_syncfs(int fd) { return syncfs(fd); }
