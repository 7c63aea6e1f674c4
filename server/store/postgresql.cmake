# The store's second backend: PostgreSQL through libpq (store/sql_pg.c), linked privately by
# ota_store like SQLite (store/sqlite.cmake).
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
