package adapters

import (
	"embed"

	"github.com/es-outbox/reference/shared/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the order service's own tables (besides the event
// store's): idempotency keys and read models.
var Migrations = postgres.NewMigration(migrationFiles, "migrations", "order_schema_version")
