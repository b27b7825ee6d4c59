/* Empty on purpose. librdkafka 2.12's rdkafka_conf.c includes <curl/curl.h> under
 * `#ifdef WITH_OAUTHBEARER_OIDC`, and its CMake build always defines that macro (to 0 without
 * curl); every use of curl is under `#if`, so nothing of it is needed. The musl compiler sees no
 * system headers, so scripts/release and the Dockerfile put this directory on its include path. */
