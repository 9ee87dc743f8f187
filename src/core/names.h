/* Validation of nicknames and room names. */
#ifndef BD_CORE_NAMES_H
#define BD_CORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NICK_MAX 32
#define ROOM_NAME_MAX 50

/* 1-32 ASCII letters, digits, '_' or '-'. */
bool name_is_valid_nick(const char *s);
/* 1-50 ASCII lowercase letters, digits, '_' or '-'. */
bool name_is_valid_room(const char *s);
/* A valid room name that no room may have: "system", which would make
 * its messages ("[system] nick: text") pass for server notices. */
bool name_is_reserved_room(const char *s);
/* ASCII case-insensitive equality, for nickname uniqueness. */
bool name_equal_nocase(const char *a, const char *b);

#endif
