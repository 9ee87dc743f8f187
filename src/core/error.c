/* Texts for error codes. */
#include "core/error.h"

const char *bd_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case BD_EDB:
		return "database unavailable, try again";
	case BD_ELOST:
		return "database connection lost";
	case BD_ENOCMD:
		return "unknown command";
	case BD_EUSAGE:
		return "wrong number of arguments";
	case BD_ENOROOM:
		return "you are not in a room";
	case BD_EINVAL:
		return "invalid input";
	case BD_ETAKEN:
		return "name already in use";
	case BD_ENOENT:
		return "not found";
	case BD_EFULL:
		return "output queue full";
	case BD_EAGAIN:
		return "busy, try again";
	case BD_EPERM:
		return "not a member of that room";
	case BD_ETOOLONG:
		return "too long";
	case BD_EEXIST:
		return "already exists";
	case BD_EUTF8:
		return "invalid UTF-8";
	case BD_ERESERVED:
		return "name is reserved";
	case BD_ETOOMANY:
		return "you are in too many rooms";
	case BD_EROOMSFULL:
		return "too many rooms on this server";
	case BD_EBUSY:
		return "server busy, try again";
	case BD_ECANCELED:
		return "canceled";
	case BD_ERATE:
		return "slow down (rate limit)";
	case BD_EADDRRATE:
		return "too many from your address, slow down";
	}
	return "unknown error";
}

const char *bd_errname(int err)
{
	static const char *const names[BD_NERRS] = {
		"db_unavailable", "db_lost", "unknown_command", "usage",
		"not_in_room", "invalid", "taken", "not_found", "queue_full",
		"again", "not_allowed", "too_long", "exists", "invalid_utf8",
		"reserved", "too_many_rooms", "rooms_full", "busy", "canceled",
		"rate_limited", "address_rate_limited",
	};

	if (err < 0 && err >= -BD_NERRS)
		return names[-err - 1];
	return err ? "other" : "none";
}
