/*
 * Slash commands and their store outcomes (commands.c): above sessions
 * and rooms, below chat.c, which sets struct chat's run_line to
 * cmd_input() and hands it /rooms' outcome.
 */
#ifndef BD_CORE_COMMANDS_INT_H
#define BD_CORE_COMMANDS_INT_H

#include <stddef.h>

struct chat;
struct chat_room_info;
struct session;

/* One input line of s, cleaned (valid UTF-8, no controls, not blank;
 * NUL-terminated at len): a command ("/name args") or a message for the
 * current room. Replies on s. */
void cmd_input(struct chat *c, struct session *s, char *line, size_t len);
/* /rooms' outcome for s: rooms sorted by chat_room_info_cmp(). Ends the
 * command. */
void cmd_rooms_done(struct chat *c, struct session *s, int err,
		    const struct chat_room_info *rooms, size_t n);

/* The command table, for its unit test. */
size_t cmd_table_size(void);
const char *cmd_table_name(size_t i);
const char *cmd_table_usage(size_t i);

#endif
