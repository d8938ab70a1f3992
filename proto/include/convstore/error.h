/*
 * convstore/error.h - the error codes and the caller-owned error struct shared by every layer.
 *
 * It lives in proto/ because proto/ is the bottom of the dependency chain (api -> store -> proto,
 * tools -> store -> proto): everything above reports failures the same way without depending
 * sideways. A function that can fail returns CS_OK (0) or one negative CS_E* code, and fills an
 * optional, caller-allocated cs_error with a one-line, lower-case message naming the offending
 * value. Filling it never allocates, so CS_ENOMEM can be reported too.
 */
#ifndef CONVSTORE_ERROR_H
#define CONVSTORE_ERROR_H

#include <stdint.h>

enum {
	CS_OK = 0,
	CS_EINVAL = -1,	   /* bad input: the caller can fix the request */
	CS_ENOTFOUND = -2, /* no such conversation, event or key */
	CS_ECONFLICT = -3, /* optimistic-concurrency or id conflict */
	CS_ETOOBIG = -4,   /* a size or count limit */
	CS_EFULL = -5,	   /* out of space: map at its cap or the disk is full */
	CS_ECORRUPT = -6,  /* stored bytes fail their check (CRC, framing, decode) */
	CS_ENOMEM = -7,	   /* allocation failed */
	CS_EAUTH = -8,	   /* authentication or authorisation */
	CS_EIO = -9,	   /* an operating-system or LMDB failure that is not one of the above */
	CS_EGONE = -10,	   /* the conversation was erased (tombstone) */
	CS_ECLOSED = -11,  /* the store is closing or closed */
};

/* The index field when the error is not about one event of a batch. */
#define CS_NO_INDEX (-1)

/**
 * What went wrong, for the caller to show. Caller-allocated; every function that takes one also
 * accepts NULL.
 *
 * @code            the same CS_E* value the function returned
 * @index           for a rejected batch, the 0-based index of the offending event, else
 *                  CS_NO_INDEX
 * @current_version for CS_ECONFLICT on append, the conversation's version at the time
 * @msg             one line, lower-case, NUL-terminated
 */
typedef struct cs_error {
	int code;
	int index;
	uint64_t current_version;
	char msg[256];
} cs_error;

#define CS_ERROR_INIT                                                                              \
	{                                                                                          \
		0, CS_NO_INDEX, 0,                                                                 \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}

/**
 * Fill @err (if not NULL) with @code and a printf-formatted message; index is reset to
 * CS_NO_INDEX and current_version to 0. Never allocates.
 *
 * @return @code, so that `return cs_error_set(err, CS_EINVAL, "...")` reads naturally.
 */
int cs_error_set(cs_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Prefix the message already in @err with "@what: ", keeping its code: errors are propagated,
 * never overwritten. Returns err->code (or @code when @err is NULL).
 */
int cs_error_wrap(cs_error *err, int code, const char *what);

/** A short constant name for @code ("invalid argument", "conflict", ...). */
const char *cs_strerror(int code);

#endif
