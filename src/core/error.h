/* Error codes shared by core and its adapters: 0 or a negative BD_E*. */
#ifndef BD_CORE_ERROR_H
#define BD_CORE_ERROR_H

enum {
	BD_EDB = -1,		/* database unavailable: nothing was done */
	BD_ELOST = -2,		/* database connection lost mid-operation */
	BD_ENOCMD = -3,		/* unknown command */
	BD_EUSAGE = -4,		/* wrong number of arguments */
	BD_ENOROOM = -5,	/* not in a room */
	BD_EINVAL = -6,		/* malformed input */
	BD_ETAKEN = -7,		/* name already in use */
	BD_ENOENT = -8,		/* no such thing */
	BD_EFULL = -9,		/* output queue over its limit */
	BD_EAGAIN = -10,	/* busy: try later */
	BD_EPERM = -11,		/* not allowed (not a member) */
	BD_ETOOLONG = -12,	/* over a size limit */
	BD_EEXIST = -13,	/* already exists */
	BD_EUTF8 = -14,		/* invalid UTF-8 */
	BD_ERESERVED = -15,	/* a name the protocol keeps for itself */
	BD_ETOOMANY = -16,	/* the user is in max_rooms_per_user rooms */
	BD_EROOMSFULL = -17,	/* the server has max_rooms rooms */
	BD_EBUSY = -18,		/* too many requests wait for the database:
				 * refused, nothing was done */
	BD_ECANCELED = -19,	/* dropped unsent: its requester was gone */
	BD_ERATE = -20,		/* over the session's rate limit */
	BD_EADDRRATE = -21,	/* over its source address's rate limit */
};

/* Codes run from -1 to -BD_NERRS. */
#define BD_NERRS 21

/* A short user-facing description of a BD_E* code. */
const char *bd_strerror(int err);
/* A metric label for it: lower case, no spaces ("too_long"). */
const char *bd_errname(int err);

#endif
