/*
 * sign: HMAC-SHA256 signatures for expiring image links.
 *
 * A link to a stored image is  <public-url>/images/<file>?expires=<unix>&sig=<signature>
 * where <signature> = base64url(HMAC-SHA256(key, "<file>\n<expires>")) without padding
 * (43 characters). Verification is constant-time and checks the expiry against `now`.
 * The key is the server secret (32 random bytes kept in the data directory by the store).
 *
 *     char sig[ISD_SIGN_LEN + 1];
 *     isd_sign_make(key, "img_ab12.png", expires, sig);
 *     switch (isd_sign_check(key, file, expires, sig, strlen(sig), now)) { ... }
 *
 * Pure functions; thread-safe.
 */
#ifndef ISD_SIGN_H
#define ISD_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define ISD_SIGN_KEY_LEN 32
#define ISD_SIGN_LEN     43

enum isd_sign_result { ISD_SIGN_VALID = 0, ISD_SIGN_BAD = -1, ISD_SIGN_EXPIRED = -2 };

/* Writes the NUL-terminated signature (ISD_SIGN_LEN chars) into `out`. */
void isd_sign_make(const uint8_t key[ISD_SIGN_KEY_LEN], const char *file, int64_t expires,
                   char out[ISD_SIGN_LEN + 1]);
/* ISD_SIGN_VALID, ISD_SIGN_BAD (wrong signature or malformed) or ISD_SIGN_EXPIRED (valid
 * signature, expires < now). An expired link is only reported as such when its signature is
 * valid, so nothing is learnt from forged links. */
enum isd_sign_result isd_sign_check(const uint8_t key[ISD_SIGN_KEY_LEN], const char *file,
                                    int64_t expires, const char *sig, size_t sig_len, int64_t now);

#endif
