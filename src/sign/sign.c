#include "sign/sign.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void isd_sign_make(const uint8_t key[ISD_SIGN_KEY_LEN], const char *file, int64_t expires,
                   char out[ISD_SIGN_LEN + 1])
{
    /* the whole "<file>\n<expires>", whatever its length */
    char small[512];
    char *msg = small;
    int n = snprintf(small, sizeof small, "%s\n%lld", file, (long long)expires);
    if (n >= (int)sizeof small && !(msg = malloc((size_t)n + 1)))
        n = -1;
    else if (msg != small)
        snprintf(msg, (size_t)n + 1, "%s\n%lld", file, (long long)expires);
    unsigned char mac[32] = {0};
    unsigned int mac_len = 0;
    if (n >= 0) /* out of memory: an all-zero MAC, which the check below never accepts */
        HMAC(EVP_sha256(), key, ISD_SIGN_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac,
             &mac_len);
    if (msg != small)
        free(msg);
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
    static const char zero_mac[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    char want[ISD_SIGN_LEN + 1];
    isd_sign_make(key, file, expires, want);
    if (sig_len != ISD_SIGN_LEN || CRYPTO_memcmp(want, sig, ISD_SIGN_LEN) != 0 ||
        memcmp(want, zero_mac, ISD_SIGN_LEN) == 0)
        return ISD_SIGN_BAD;
    return expires < now ? ISD_SIGN_EXPIRED : ISD_SIGN_VALID;
}
