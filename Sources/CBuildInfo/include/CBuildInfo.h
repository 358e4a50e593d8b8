#ifndef DRKIT_CBUILDINFO_H
#define DRKIT_CBUILDINFO_H

/* What this binary was built from. The version is the repository's VERSION file, read at compile
   time; the commit and date are stamped by scripts/package.sh (drkit_build_stamp.h) and are empty in a
   plain `swift build`. */
const char *drkit_build_version(void);
const char *drkit_build_commit(void);
const char *drkit_build_date(void);

#endif
