/* sbx-api's one way to log: timestamped lines on stderr. */
#ifndef SBX_API_APILOG_H
#define SBX_API_APILOG_H

enum apilog_level { APILOG_DEBUG, APILOG_INFO, APILOG_WARN, APILOG_ERR };

/* Lines below level are dropped. Default: APILOG_INFO. */
void apilog_set_level(enum apilog_level level);

/* Writes "TIME LEVEL message\n" to stderr. */
void apilog(enum apilog_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) apilog(APILOG_DEBUG, __VA_ARGS__)
#define log_info(...)  apilog(APILOG_INFO, __VA_ARGS__)
#define log_warn(...)  apilog(APILOG_WARN, __VA_ARGS__)
#define log_err(...)   apilog(APILOG_ERR, __VA_ARGS__)

#endif
