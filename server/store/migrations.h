/*
 * store/migrations.h - the schema/NNNN_*.sql files, embedded at build time
 * (store/embed-migrations.cmake) in increasing order of their numbers (gaps allowed: 0001-0009
 * core, 0010-0019 management and audit, 0020-0029 rollouts).
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

#endif
