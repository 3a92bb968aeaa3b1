
/*
 * Copyright (C) the ngx_http_reductrai_module authors.
 *
 * Google service-account keys: parsing the JSON key file, and the RS256
 * JWT assertion exchanged for an access token, verified here with the
 * public half of a freshly generated key, as the token endpoint does.
 */


#include "ngx_http_reductrai_http.h"
#include "unit.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>


#define EMAIL  "archiver@project.iam.gserviceaccount.com"
#define SCOPE  "https://www.googleapis.com/auth/devstorage.read_write"
#define NOW    1764100000


static char *
pem_of(EVP_PKEY *k)
{
    BIO    *bio;
    char   *pem, *p;
    long    n;

    bio = BIO_new(BIO_s_mem());
    (void) PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);

    n = BIO_get_mem_data(bio, &p);
    pem = strndup(p, (size_t) n);
    BIO_free(bio);

    return pem;
}


static char *
key_json(const char *type, const char *pem, const char *token_uri)
{
    char    *s;
    json_t  *j;

    j = json_object();

    if (type) {
        json_object_set_new(j, "type", json_string(type));
    }

    json_object_set_new(j, "project_id", json_string("project"));
    json_object_set_new(j, "private_key_id", json_string("kid-123"));
    json_object_set_new(j, "client_email", json_string(EMAIL));

    if (pem) {
        json_object_set_new(j, "private_key", json_string(pem));
    }

    if (token_uri) {
        json_object_set_new(j, "token_uri", json_string(token_uri));
    }

    s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);

    return s;
}


static json_t *
part_json(const char *p, size_t len)
{
    u_char   buf[2048];
    ssize_t  n;

    if (len > 2000) {
        return NULL;
    }

    n = ngx_http_reductrai_http_base64_decode(buf, p, len);
    if (n < 0) {
        return NULL;
    }

    return json_loadb((char *) buf, (size_t) n, 0, NULL);
}


static void
test_jwt(void)
{
    int                            verified;
    char                          *pem, *text, *jwt, *dot1, *dot2, err[256];
    u_char                         sig[1024];
    json_t                        *h, *c;
    ssize_t                        n;
    EVP_PKEY                      *k;
    EVP_MD_CTX                    *md;
    ngx_http_reductrai_gcs_key_t  *key;

    k = EVP_RSA_gen(2048);
    ok(k != NULL, "generated an RSA key");
    if (k == NULL) {
        return;
    }

    pem = pem_of(k);
    text = key_json("service_account", pem, "http://127.0.0.1:9/token");

    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key != NULL, "parsed the key file");
    if (key == NULL) {
        return;
    }

    is_str(ngx_http_reductrai_gcs_key_token_uri(key),
           "http://127.0.0.1:9/token", "token_uri from the key file");

    jwt = ngx_http_reductrai_gcs_jwt(key, NOW, SCOPE);
    ok(jwt != NULL, "signed a JWT");
    if (jwt == NULL) {
        return;
    }

    dot1 = strchr(jwt, '.');
    dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    ok(dot2 != NULL && strchr(dot2 + 1, '.') == NULL, "three parts");
    if (dot2 == NULL) {
        return;
    }

    ok(strpbrk(jwt, "+/=") == NULL, "base64url without padding");

    h = part_json(jwt, (size_t) (dot1 - jwt));
    c = part_json(dot1 + 1, (size_t) (dot2 - dot1 - 1));

    is_str(json_string_value(json_object_get(h, "alg")) ?: "", "RS256",
           "header alg");
    is_str(json_string_value(json_object_get(h, "typ")) ?: "", "JWT",
           "header typ");
    is_str(json_string_value(json_object_get(h, "kid")) ?: "", "kid-123",
           "header kid");
    is_str(json_string_value(json_object_get(c, "iss")) ?: "", EMAIL,
           "claim iss");
    is_str(json_string_value(json_object_get(c, "scope")) ?: "", SCOPE,
           "claim scope");
    is_str(json_string_value(json_object_get(c, "aud")) ?: "",
           "http://127.0.0.1:9/token", "claim aud is the token_uri");
    is_int(json_integer_value(json_object_get(c, "iat")), NOW, "claim iat");
    is_int(json_integer_value(json_object_get(c, "exp")), NOW + 3600,
           "claim exp: one hour, the most Google accepts");

    json_decref(h);
    json_decref(c);

    /* RS256 over "header.claims", checked with the public key */

    n = ngx_http_reductrai_http_base64_decode(sig, dot2 + 1, strlen(dot2 + 1));
    is_int(n, 256, "a 2048-bit signature");

    md = EVP_MD_CTX_new();
    verified = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1
               && EVP_DigestVerify(md, sig, (size_t) n, (u_char *) jwt,
                                   (size_t) (dot2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    ok(verified, "the signature verifies with the public key");

    /* and fails for other bytes */
    jwt[5] ^= 1;
    md = EVP_MD_CTX_new();
    verified = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1
               && EVP_DigestVerify(md, sig, (size_t) n, (u_char *) jwt,
                                   (size_t) (dot2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    ok(!verified, "a changed assertion does not verify");

    free(jwt);
    ngx_http_reductrai_gcs_key_free(key);
    free(text);

    /* the default token endpoint */

    text = key_json(NULL, pem, NULL);
    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key != NULL && strcmp(ngx_http_reductrai_gcs_key_token_uri(key),
                             "https://oauth2.googleapis.com/token") == 0,
       "token_uri defaults to Google's");
    ngx_http_reductrai_gcs_key_free(key);
    free(text);

    free(pem);
    EVP_PKEY_free(k);
}


static void
test_bad_keys(void)
{
    char                          *text, *pem, err[256];
    EVP_PKEY                      *ec;
    ngx_http_reductrai_gcs_key_t  *key;

    static const char  secretish[] = "{\"private_key\": \"-----BEGIN "
                                     "PRIVATE KEY-----\\nMIIEsecretsecret";

    key = ngx_http_reductrai_gcs_key_parse(secretish, err, sizeof(err));
    ok(key == NULL && strstr(err, "not JSON") != NULL,
       "broken JSON refused: %s", err);
    ok(strstr(err, "secret") == NULL && strstr(err, "MIIE") == NULL,
       "the message quotes nothing of the file");

    text = key_json("authorized_user", "x", NULL);
    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key == NULL && strstr(err, "not a service-account key") != NULL,
       "user credentials refused: %s", err);
    free(text);

    text = key_json("service_account", NULL, NULL);
    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key == NULL && strstr(err, "no client_email or private_key") != NULL,
       "a key file without its key refused: %s", err);
    free(text);

    text = key_json("service_account", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                    "-----END PRIVATE KEY-----\n", NULL);
    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key == NULL && strstr(err, "not an RSA key") != NULL,
       "garbage PEM refused: %s", err);
    free(text);

    ec = EVP_EC_gen("P-256");
    pem = pem_of(ec);
    text = key_json("service_account", pem, NULL);
    key = ngx_http_reductrai_gcs_key_parse(text, err, sizeof(err));
    ok(key == NULL && strstr(err, "not an RSA key") != NULL,
       "an EC key refused (RS256 needs RSA): %s", err);
    free(text);
    free(pem);
    EVP_PKEY_free(ec);
}


int
main(void)
{
    test_jwt();
    test_bad_keys();

    return done_testing();
}
