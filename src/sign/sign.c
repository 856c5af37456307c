#include "sign/sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void isd_sign_make(const uint8_t key[ISD_SIGN_KEY_LEN], const char *file, int64_t expires,
                   char out[ISD_SIGN_LEN + 1])
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s\n%lld", file, (long long)expires);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1; /* file names are short; a cut one never verifies */
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, ISD_SIGN_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac,
         &mac_len);
    /* 32 bytes → 43 base64url characters, no padding */
    size_t o = 0;
    for (size_t i = 0; i < 30; i += 3) {
        uint32_t v = (uint32_t)mac[i] << 16 | (uint32_t)mac[i + 1] << 8 | mac[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    uint32_t v = (uint32_t)mac[30] << 16 | (uint32_t)mac[31] << 8;
    out[o++] = b64url[v >> 18];
    out[o++] = b64url[(v >> 12) & 63];
    out[o++] = b64url[(v >> 6) & 63];
    out[o] = '\0';
}

enum isd_sign_result isd_sign_check(const uint8_t key[ISD_SIGN_KEY_LEN], const char *file,
                                    int64_t expires, const char *sig, size_t sig_len, int64_t now)
{
    char want[ISD_SIGN_LEN + 1];
    isd_sign_make(key, file, expires, want);
    if (sig_len != ISD_SIGN_LEN || CRYPTO_memcmp(want, sig, ISD_SIGN_LEN) != 0)
        return ISD_SIGN_BAD;
    return expires < now ? ISD_SIGN_EXPIRED : ISD_SIGN_VALID;
}
