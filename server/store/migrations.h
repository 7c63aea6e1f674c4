/*
 * store/migrations.h - the schema/NNNN_*.sql files (SQLite: ota_migrations) and the
 * schema/postgresql/NNNN_*.sql files (PostgreSQL: ota_migrations_pg), embedded at build time
 * (store/embed-migrations.cmake) in increasing order of their numbers (gaps allowed: 0001-0009
 * core, 0010-0019 management and audit, 0020-0029 rollouts). One numbered set per backend:
 * every migration after the PostgreSQL set's first exists in both with the same number, so
 * both backends report the same schema version.
 */
#ifndef OTA_STORE_MIGRATIONS_H
#define OTA_STORE_MIGRATIONS_H

struct ota_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct ota_migration ota_migrations[];
extern const unsigned ota_migrations_count;
extern const struct ota_migration ota_migrations_pg[];
extern const unsigned ota_migrations_pg_count;

#endif
