/* Empty on purpose. librdkafka 2.12's rdkafka_conf.c includes <curl/curl.h> under
 * `#ifdef WITH_OAUTHBEARER_OIDC`, and its CMake build always defines that macro (to 0 without
 * curl); every use of curl is under `#if`, so nothing of it is needed. kafka-edge builds librdkafka
 * without curl, so no machine needs libcurl's development files: .cargo/config.toml puts this
 * directory on the C include path of every build, and scripts/release and the Dockerfile on the
 * musl compiler's (which sees no system headers). */
