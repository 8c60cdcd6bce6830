/* The last line of a child's log file, for error messages. */
#ifndef SBX_API_LOGTAIL_H
#define SBX_API_LOGTAIL_H

#include <stddef.h>

/* Last non-empty line of the file at path (from its last KiB) into out,
 * non-printable bytes as '?'; "" when there is none or no file. */
void logtail_last_line(const char *path, char *out, size_t len);

#endif
