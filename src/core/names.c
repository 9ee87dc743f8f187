/*
 * Name rules; the database enforces the same ones with CHECK constraints
 * (reserved room names: migration 012).
 */
#include "core/names.h"

#include <string.h>

static bool name_ok(const char *s, size_t max, bool upper_ok)
{
	size_t n = strlen(s);

	if (!n || n > max)
		return false;
	for (; *s; s++) {
		char ch = *s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '_' || ch == '-')
			continue;
		if (upper_ok && ch >= 'A' && ch <= 'Z')
			continue;
		return false;
	}
	return true;
}

bool name_is_valid_nick(const char *s)
{
	return name_ok(s, NICK_MAX, true);
}

bool name_is_valid_room(const char *s)
{
	return name_ok(s, ROOM_NAME_MAX, false);
}

bool name_is_reserved_room(const char *s)
{
	/* Line clients tell server notices by the "[system] " prefix; a
	 * room's lines start with "[<room>] ". */
	return !strcmp(s, "system");
}

static char lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

bool name_equal_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower(*a) != lower(*b))
			return false;
	return *a == *b;
}
