/* ZooKeeper path rules (PathUtils.validatePath): absolute, no trailing slash except "/",
 * no empty, "." or ".." components, no NUL, no control or reserved characters. ZooKeeper
 * checks Java UTF-16 chars; here the path is UTF-8, so code points above U+FFFF (surrogate
 * pairs in Java) and malformed UTF-8 (U+FFFD in Java) are rejected the same way. */
#ifndef ZK_TREE_PATH_H
#define ZK_TREE_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Returns NULL when valid, otherwise a reason for the log. */
const char *path_invalid(const char *p, size_t len);
/* Length of the parent path ("/a/b" -> 2, "/a" -> 1 for "/"); -1 if there is no parent. */
long path_parent_len(const char *p, size_t len);
/* The last component, after the last '/'. */
const char *path_basename(const char *p, size_t len, size_t *name_len);

#endif
