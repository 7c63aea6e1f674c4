# The store's backend: SQLite, found here because server/store/ is the one module that sees it
# (ota_store links it privately; nothing else in server/ does).
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
