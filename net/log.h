/* Logging to stderr (one line an event, with a level) and always-on assertions.
 * Every subsystem includes this; it is the only shared header outside proto.h. */
#ifndef ZK_LOG_H
#define ZK_LOG_H

enum zk_log_level { ZK_LOG_ERROR = 0, ZK_LOG_WARN = 1, ZK_LOG_INFO = 2, ZK_LOG_DEBUG = 3 };

extern int zk_log_level;

void zk_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void zk_assert_fail(const char *cond, const char *file, int line);
int zk_log_parse_level(const char *name);

#define LOG_ERROR(...) zk_log(ZK_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...)  do { if (zk_log_level >= ZK_LOG_WARN) zk_log(ZK_LOG_WARN, __VA_ARGS__); } while (0)
#define LOG_INFO(...)  do { if (zk_log_level >= ZK_LOG_INFO) zk_log(ZK_LOG_INFO, __VA_ARGS__); } while (0)
#define LOG_DEBUG(...) do { if (zk_log_level >= ZK_LOG_DEBUG) zk_log(ZK_LOG_DEBUG, __VA_ARGS__); } while (0)

/* Always on, in release builds too: a failed assertion is a bug, never an operating error. */
#define ZK_ASSERT(c) do { if (!(c)) zk_assert_fail(#c, __FILE__, __LINE__); } while (0)

#endif
