import SQLite from "better-sqlite3";
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type ColumnDefinitionBuilder,
  type Generated,
  type Migration,
  type MigrationProvider,
  type Transaction,
} from "kysely";
import { Pool } from "pg";
import { DEFAULT_TENANT_LIMITS } from "../core/quota.js";
import { TempkubeError, redactSecrets } from "../util/errors.js";
import { logger } from "../util/log.js";

/**
 * The store's schema, migrations and connections. SQLite in the data directory by default
 * (one file, embedded), or PostgreSQL (a database server of its own): one query layer
 * (Kysely), one schema. Timestamps are bigint (epoch ms; pg returns them as strings, so
 * every mapper wraps numbers in Number()); booleans are integers 0/1 on both.
 */
export interface ClusterRow {
  id: string;
  owner: string;
  name: string | null;
  spec: string;
  keep: number;
  notification_email: string | null;
  desired: string;
  phase: string;
  ttl_minutes: number;
  expires_at: number;
  created_at: number;
  updated_at: number;
  last_error: string | null;
  timings: string;
  generation: number;
  labels: string;
  pooled: number;
  idle_minutes: number;
  running_since: number | null;
  slept_at: number | null;
  frozen_at: number | null;
  /** core/cluster-record.ts SystemPurpose; null: a user's or a pool's cluster. */
  system: string | null;
}

export interface TokenRow {
  id: Generated<number>;
  name: string;
  hash: string;
  admin: number;
  created_at: number;
  max_clusters: number | null;
  max_ttl_minutes: number | null;
  sizes: string | null;
  privileged: number;
  revoked_at: number | null;
  max_services: number | null;
  max_service_minutes: number | null;
}

export interface OutboxRow {
  id: Generated<number>;
  dedupe_key: string;
  cluster_id: string;
  event: string;
  channel: string;
  recipient: string;
  payload: string;
  attempts: number;
  next_attempt_at: number;
  sent_at: number | null;
  last_error: string | null;
  created_at: number;
}

export interface Database {
  clusters: ClusterRow;
  tokens: TokenRow;
  outbox: OutboxRow;
}

export type StoreDialect = "sqlite" | "postgres";

/**
 * The migrations, the same on both dialects except where SQL differs: an auto-incrementing
 * key is `integer primary key autoincrement` on SQLite (as databases made before PostgreSQL
 * support have it) and an identity column on PostgreSQL.
 */
function migrations(dialect: StoreDialect): Record<string, Migration> {
  const autoIncrementKey = (c: ColumnDefinitionBuilder) =>
    dialect === "postgres" ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement();
  return {
    "001_clusters_and_tokens": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("clusters")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("owner", "text", (c) => c.notNull())
          .addColumn("name", "text")
          .addColumn("spec", "text", (c) => c.notNull())
          .addColumn("keep", "integer", (c) => c.notNull())
          .addColumn("notification_email", "text")
          .addColumn("desired", "text", (c) => c.notNull())
          .addColumn("phase", "text", (c) => c.notNull())
          .addColumn("ttl_minutes", "integer", (c) => c.notNull())
          .addColumn("expires_at", "bigint", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .addColumn("last_error", "text")
          .addColumn("timings", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("tokens")
          .addColumn("id", "integer", autoIncrementKey)
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("hash", "text", (c) => c.notNull().unique())
          .addColumn("admin", "integer", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
    "002_outbox": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("outbox")
          .addColumn("id", "integer", autoIncrementKey)
          .addColumn("dedupe_key", "text", (c) => c.notNull().unique())
          .addColumn("cluster_id", "text", (c) => c.notNull())
          .addColumn("event", "text", (c) => c.notNull())
          .addColumn("channel", "text", (c) => c.notNull())
          .addColumn("recipient", "text", (c) => c.notNull())
          .addColumn("payload", "text", (c) => c.notNull())
          .addColumn("attempts", "integer", (c) => c.notNull())
          .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
          .addColumn("sent_at", "bigint")
          .addColumn("last_error", "text")
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
    "003_cluster_generation": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable("clusters")
          .addColumn("generation", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    "004_token_limits_labels_pool": {
      async up(db: Kysely<unknown>) {
        for (const [name, type] of [
          ["max_clusters", "integer"],
          ["max_ttl_minutes", "integer"],
          ["sizes", "text"],
          ["revoked_at", "bigint"],
        ] as const) {
          await db.schema.alterTable("tokens").addColumn(name, type).execute();
        }
        await db.schema
          .alterTable("tokens")
          .addColumn("privileged", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable("clusters")
          .addColumn("labels", "text", (c) => c.notNull().defaultTo("{}"))
          .execute();
        await db.schema
          .alterTable("clusters")
          .addColumn("pooled", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    // Sleep when idle (issue 12). Clusters made before it never sleep (idle_minutes 0).
    "005_cluster_sleep": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable("clusters")
          .addColumn("idle_minutes", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
        for (const name of ["running_since", "slept_at"]) {
          await db.schema.alterTable("clusters").addColumn(name, "bigint").execute();
        }
      },
    },
    // Ephemeral services' limits (issue 14). Tenant tokens made before get the tenant defaults
    // (core/quota.ts DEFAULT_TENANT_LIMITS), not "no limit": nobody chose to let them fill the
    // services cluster. Admin tokens keep null (they have no limits anyway).
    "006_token_service_limits": {
      async up(db: Kysely<unknown>) {
        for (const name of ["max_services", "max_service_minutes"]) {
          await db.schema.alterTable("tokens").addColumn(name, "integer").execute();
        }
        await sql`update tokens set max_services = ${DEFAULT_TENANT_LIMITS.maxServices}, max_service_minutes = ${DEFAULT_TENANT_LIMITS.maxServiceMinutes} where admin = 0`.execute(
          db,
        );
      },
    },
    // The clusters the server keeps for itself (issue 14: the services cluster), marked by what
    // they are for rather than by a made-up owner: every cluster made before is a user's or a pool's.
    "007_cluster_system": {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable("clusters").addColumn("system", "text").execute();
      },
    },
    // Freezing idle clusters (issue 15): null on every cluster made before (none was frozen).
    "008_cluster_freeze": {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable("clusters").addColumn("frozen_at", "bigint").execute();
      },
    },
  };
}

class InlineMigrations implements MigrationProvider {
  constructor(private readonly dialect: StoreDialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/** The advisory lock key of `serialized` transactions: "tempkube" in ASCII, as a bigint. */
const WRITE_LOCK_KEY = BigInt("0x74656d706b756265").toString();

/** One open, migrated database: what every table's queries run on. */
export class Connection {
  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: StoreDialect,
  ) {}

  /** PostgreSQL for a postgres:// or postgresql:// URL, otherwise SQLite in that file. */
  static async open(urlOrFile: string): Promise<Connection> {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(urlOrFile)?.[1].toLowerCase();
    if (scheme === undefined) return Connection.openSqlite(urlOrFile);
    if (scheme === "postgres" || scheme === "postgresql") return Connection.openPostgres(urlOrFile);
    throw new TempkubeError(
      "invalid-input",
      `database "${shownUrl(urlOrFile)}" is neither a postgres:// URL nor a SQLite file path`,
    );
  }

  static async openSqlite(file: string): Promise<Connection> {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(file) }) });
    return Connection.migrated(new Connection(db, "sqlite"));
  }

  /** Connects (failing at once, naming the URL without its password, when it cannot) and migrates. */
  static async openPostgres(url: string): Promise<Connection> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TempkubeError(
        "invalid-input",
        `database URL "${shownUrl(url)}" is not a valid URL; expected e.g. postgres://tempkube@db.example:5432/tempkube`,
      );
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      throw new TempkubeError(
        "invalid-input",
        `database URL "${shownUrl(url)}" is not a postgres:// or postgresql:// URL`,
      );
    }
    // Without a connect timeout, an address that drops packets would hang the start forever.
    const pool = new Pool({ connectionString: url, connectionTimeoutMillis: 10_000 });
    // An idle connection the server closes is reported here; unhandled, it would end the process.
    pool.on("error", (err) =>
      logger.warn({ error: redactSecrets(describe(err)) }, "PostgreSQL connection lost; the pool reconnects"),
    );
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      await db.destroy();
      throw new TempkubeError("runtime", `cannot connect to PostgreSQL at ${shownUrl(url)}: ${describe(err)}`, {
        cause: err,
      });
    }
    return Connection.migrated(new Connection(db, "postgres"));
  }

  private static async migrated(connection: Connection): Promise<Connection> {
    const { error } = await new Migrator({
      db: connection.db,
      provider: new InlineMigrations(connection.dialect),
    }).migrateToLatest();
    if (error) {
      await connection.close();
      throw new TempkubeError("runtime", `store migration failed (${connection.dialect}): ${describe(error)}`, {
        cause: error,
      });
    }
    return connection;
  }

  /**
   * A transaction that reads, decides, then writes: admission, claiming a pool cluster, a
   * cluster's read-modify-write, the last admin token. SQLite's one connection already runs
   * them one at a time. On PostgreSQL two of them could both pass the same check, so each
   * first takes one transaction-scoped advisory lock (released at commit or rollback): they
   * run one at a time there too, with no retry loop for every caller as SERIALIZABLE would
   * need. They are short (no I/O but the database's inside), so one lock costs nothing
   * here. READ COMMITTED because each statement then sees what the previous holder
   * committed; under REPEATABLE READ the snapshot would predate the wait for the lock.
   */
  serialized<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    if (this.dialect === "sqlite") return this.db.transaction().execute(work);
    return this.db
      .transaction()
      .setIsolationLevel("read committed")
      .execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${sql.raw(WRITE_LOCK_KEY)})`.execute(trx);
        return work(trx);
      });
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

/**
 * A database URL fit for errors and logs: its password replaced. A URL too broken to parse
 * loses everything between "user:" and its last "@" (a password may hold an unencoded "@").
 */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "redacted";
    return redactSecrets(parsed.toString());
  } catch {
    return redactSecrets(url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:).*@/i, "$1[redacted]@"));
  }
}

/** An error's message; a failed connect to a name with several addresses is an AggregateError with an empty one. */
function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return [...new Set(err.errors.map(describe))].join("; ");
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}
