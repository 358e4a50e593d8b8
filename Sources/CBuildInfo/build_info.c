#include "CBuildInfo.h"

/* scripts/package.sh writes this header into its build folder and puts that folder on the include
   path: a constant flag, so a new stamp recompiles this file alone, not every module. */
#if __has_include("drkit_build_stamp.h")
#include "drkit_build_stamp.h"
#endif

#ifndef DRKIT_BUILD_COMMIT
#define DRKIT_BUILD_COMMIT ""
#endif
#ifndef DRKIT_BUILD_DATE
#define DRKIT_BUILD_DATE ""
#endif

/* C23's #embed, which clang takes in any C mode. */
#pragma clang diagnostic ignored "-Wc23-extensions"
/* VERSION is the one place the version is written; #embed keeps it out of any generated source. */
static const char version_file[] = {
#embed "../../VERSION"
    , 0
};

const char *drkit_build_version(void) { return version_file; }
const char *drkit_build_commit(void) { return DRKIT_BUILD_COMMIT; }
const char *drkit_build_date(void) { return DRKIT_BUILD_DATE; }
