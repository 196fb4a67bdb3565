import { createHash, randomBytes } from "node:crypto";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type ColumnDefinitionBuilder, type Generated, type Migration,
  type MigrationProvider, type Transaction } from "kysely";
import { Pool } from "pg";
import type { ClusterRecord } from "../core/cluster-record.js";
import { NO_LIMITS, type Refusal, type RunningCounts, type TokenIdentity, type TokenLimits } from "../core/quota.js";
import { TempkubeError, redactSecrets } from "../util/errors.js";
import { logger } from "../util/log.js";

/**
 * The service's store. SQLite in the data directory by default (one file, embedded), or
 * PostgreSQL (a database server of its own): one query layer (Kysely), one schema.
 * Timestamps are bigint (epoch ms; pg returns them as strings, so every mapper wraps
 * numbers in Number()); booleans are integers 0/1 on both.
 */
interface ClustersTable {
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
}

interface TokensTable {
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
}

interface OutboxTable {
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

interface Database {
  clusters: ClustersTable;
  tokens: TokensTable;
  outbox: OutboxTable;
}

/** A notification waiting to go out (or sent). One row per event and channel, ever. */
export interface OutboxMessage {
  id: number;
  dedupeKey: string;
  clusterId: string;
  event: string;
  channel: "email" | "webhook";
  recipient: string;
  payload: Record<string, unknown>;
  attempts: number;
  nextAttemptAt: number;
  sentAt: number | null;
  lastError: string | null;
}

export type NewOutboxMessage = Pick<OutboxMessage, "dedupeKey" | "clusterId" | "event" | "channel" | "recipient" | "payload">;

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
        await db.schema.createTable("clusters")
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
        await db.schema.createTable("tokens")
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
        await db.schema.createTable("outbox")
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
        await db.schema.alterTable("clusters").addColumn("generation", "integer", (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    "004_token_limits_labels_pool": {
      async up(db: Kysely<unknown>) {
        for (const [name, type] of [["max_clusters", "integer"], ["max_ttl_minutes", "integer"], ["sizes", "text"], ["revoked_at", "bigint"]] as const) {
          await db.schema.alterTable("tokens").addColumn(name, type).execute();
        }
        await db.schema.alterTable("tokens").addColumn("privileged", "integer", (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable("clusters").addColumn("labels", "text", (c) => c.notNull().defaultTo("{}")).execute();
        await db.schema.alterTable("clusters").addColumn("pooled", "integer", (c) => c.notNull().defaultTo(0)).execute();
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

export type { TokenIdentity } from "../core/quota.js";

/** A token as an admin sees it: never its secret. */
export interface TokenInfo extends TokenIdentity {
  createdAt: number;
  revokedAt: number | null;
}

/** Decides, inside the transaction that would add a running cluster, whether it may. */
export type Admission = (counts: RunningCounts) => Refusal | undefined;

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export class Store {
  private constructor(private readonly db: Kysely<Database>, readonly dialect: StoreDialect) {}

  /** PostgreSQL for a postgres:// or postgresql:// URL, otherwise SQLite in that file. */
  static async open(urlOrFile: string): Promise<Store> {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(urlOrFile)?.[1].toLowerCase();
    if (scheme === undefined) return Store.openSqlite(urlOrFile);
    if (scheme === "postgres" || scheme === "postgresql") return Store.openPostgres(urlOrFile);
    throw new TempkubeError("invalid-input", `database "${shownUrl(urlOrFile)}" is neither a postgres:// URL nor a SQLite file path`);
  }

  static async openSqlite(file: string): Promise<Store> {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(file) }) });
    return Store.migrated(new Store(db, "sqlite"));
  }

  /** Connects (failing at once, naming the URL without its password, when it cannot) and migrates. */
  static async openPostgres(url: string): Promise<Store> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TempkubeError("invalid-input", `database URL "${shownUrl(url)}" is not a valid URL; expected e.g. postgres://tempkube@db.example:5432/tempkube`);
    }
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      throw new TempkubeError("invalid-input", `database URL "${shownUrl(url)}" is not a postgres:// or postgresql:// URL`);
    }
    // Without a connect timeout, an address that drops packets would hang the start forever.
    const pool = new Pool({ connectionString: url, connectionTimeoutMillis: 10_000 });
    // An idle connection the server closes is reported here; unhandled, it would end the process.
    pool.on("error", (err) => logger.warn({ error: redactSecrets(describe(err)) }, "PostgreSQL connection lost; the pool reconnects"));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      await db.destroy();
      throw new TempkubeError("runtime", `cannot connect to PostgreSQL at ${shownUrl(url)}: ${describe(err)}`, { cause: err });
    }
    return Store.migrated(new Store(db, "postgres"));
  }

  private static async migrated(store: Store): Promise<Store> {
    const { error } = await new Migrator({ db: store.db, provider: new InlineMigrations(store.dialect) }).migrateToLatest();
    if (error) {
      await store.close();
      throw new TempkubeError("runtime", `store migration failed (${store.dialect}): ${describe(error)}`, { cause: error });
    }
    return store;
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
  private serialized<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    if (this.dialect === "sqlite") return this.db.transaction().execute(work);
    return this.db.transaction().setIsolationLevel("read committed").execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${sql.raw(WRITE_LOCK_KEY)})`.execute(trx);
      return work(trx);
    });
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // ---- clusters

  /**
   * Inserts a cluster; with `admit`, counts running clusters and inserts in one
   * transaction, so two concurrent creates cannot both take the last place.
   */
  async insertCluster(r: ClusterRecord, admit?: Admission): Promise<void> {
    await this.serialized(async (trx) => {
      if (admit) refuseIf(admit(await runningCounts(trx, r.owner)));
      await trx.insertInto("clusters").values(toRow(r)).execute();
    });
  }

  /**
   * Changes a cluster and queues the notifications that change causes, in one transaction:
   * a notification is never lost to a crash between the two, and a dedupe key that was
   * queued before is ignored, so an event is never queued twice.
   */
  async updateCluster(id: string, changes: Partial<ClusterRecord>, now: number,
    notify: (next: ClusterRecord, previous: ClusterRecord) => NewOutboxMessage[] = () => [], admit?: Admission): Promise<ClusterRecord> {
    return this.serialized(async (trx) => {
      const row = await trx.selectFrom("clusters").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `cluster ${id} not found`);
      const previous = fromRow(row);
      if (admit) refuseIf(admit(await runningCounts(trx, previous.owner)));
      const next = { ...previous, ...changes, updatedAt: now };
      await trx.updateTable("clusters").set(toRow(next)).where("id", "=", id).execute();
      await insertOutbox(trx, notify(next, previous), now);
      return next;
    });
  }

  // ---- outbox

  async dueMessages(now: number, limit = 20): Promise<OutboxMessage[]> {
    const rows = await this.db.selectFrom("outbox").selectAll().where("sent_at", "is", null).where("next_attempt_at", "<=", now)
      .orderBy("id").limit(limit).execute();
    return rows.map(fromOutboxRow);
  }

  async nextMessageDue(): Promise<number | undefined> {
    const row = await this.db.selectFrom("outbox").select((eb) => eb.fn.min("next_attempt_at").as("next")).where("sent_at", "is", null).executeTakeFirst();
    return row?.next === null || row?.next === undefined ? undefined : Number(row.next);
  }

  async markSent(id: number, now: number): Promise<void> {
    await this.db.updateTable("outbox").set({ sent_at: now, last_error: null }).where("id", "=", id).execute();
  }

  async markFailed(id: number, error: string, attempts: number, nextAttemptAt: number): Promise<void> {
    await this.db.updateTable("outbox").set({ attempts, last_error: error, next_attempt_at: nextAttemptAt }).where("id", "=", id).execute();
  }

  async messages(clusterId?: string): Promise<OutboxMessage[]> {
    let q = this.db.selectFrom("outbox").selectAll().orderBy("id");
    if (clusterId) q = q.where("cluster_id", "=", clusterId);
    return (await q.execute()).map(fromOutboxRow);
  }

  async getCluster(id: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom("clusters").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  /** Users' clusters (the warm pool's are not listed), optionally one owner's. */
  async listClusters(owner?: string): Promise<ClusterRecord[]> {
    let q = this.db.selectFrom("clusters").selectAll().where("pooled", "=", 0).orderBy("created_at");
    if (owner !== undefined) q = q.where("owner", "=", owner);
    return (await q.execute()).map(fromRow);
  }

  /** Every cluster the controller must reconcile: users' and the warm pool's. */
  async allClusters(): Promise<ClusterRecord[]> {
    return (await this.db.selectFrom("clusters").selectAll().orderBy("created_at").execute()).map(fromRow);
  }

  /**
   * Hands a running pool cluster of this shape to a user, in one transaction with the
   * admission check: the record becomes theirs (owner, lifetime, labels) and leaves the pool.
   * Undefined when the pool has none ready.
   */
  async claimPooled(match: (r: ClusterRecord) => boolean, claim: (r: ClusterRecord) => ClusterRecord, admit: Admission,
    notify: (next: ClusterRecord) => NewOutboxMessage[]): Promise<ClusterRecord | undefined> {
    return this.serialized(async (trx) => {
      const rows = await trx.selectFrom("clusters").selectAll().where("pooled", "=", 1).where("phase", "=", "running")
        .where("desired", "=", "running").orderBy("created_at").execute();
      const candidate = rows.map(fromRow).find(match);
      if (!candidate) return undefined;
      const next = claim(candidate);
      refuseIf(admit(await runningCounts(trx, next.owner)));
      await trx.updateTable("clusters").set(toRow(next)).where("id", "=", candidate.id).where("pooled", "=", 1).execute();
      await insertOutbox(trx, notify(next), next.updatedAt);
      return next;
    });
  }

  // ---- tokens

  /** Creates a token; the secret is returned once and only its hash is stored. */
  async createToken(name: string, admin: boolean, now: number, limits: TokenLimits = admin ? NO_LIMITS : DEFAULT_TENANT_LIMITS): Promise<{ token: string; identity: TokenIdentity }> {
    const token = `tk_${randomBytes(24).toString("base64url")}`;
    const l = admin ? NO_LIMITS : limits;
    const res = await this.db.insertInto("tokens").values({
      name, hash: hashToken(token), admin: admin ? 1 : 0, created_at: now, max_clusters: l.maxClusters, max_ttl_minutes: l.maxTtlMinutes,
      sizes: l.sizes ? JSON.stringify(l.sizes) : null, privileged: l.privileged ? 1 : 0, revoked_at: null,
    }).returning("id").executeTakeFirstOrThrow();
    return { token, identity: { id: Number(res.id), name, admin, limits: l } };
  }

  /** The identity behind a secret; revoked tokens have none. */
  async identify(token: string): Promise<TokenIdentity | undefined> {
    const row = await this.db.selectFrom("tokens").selectAll().where("hash", "=", hashToken(token)).where("revoked_at", "is", null).executeTakeFirst();
    return row ? fromTokenRow(row) : undefined;
  }

  async listTokens(): Promise<TokenInfo[]> {
    return (await this.db.selectFrom("tokens").selectAll().orderBy("id").execute()).map(fromTokenRow);
  }

  async getToken(id: number): Promise<TokenInfo | undefined> {
    const row = await this.db.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? fromTokenRow(row) : undefined;
  }

  /** Revokes a token; refused when it is the last admin token left (nobody could manage the server). */
  async revokeToken(id: number, now: number): Promise<TokenInfo> {
    return this.serialized(async (trx) => {
      const row = await trx.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `token ${id} not found`);
      if (row.revoked_at !== null) throw new TempkubeError("conflict", `token ${id} is already revoked`);
      if (Number(row.admin) === 1) {
        const admins = await trx.selectFrom("tokens").select((eb) => eb.fn.countAll().as("n")).where("admin", "=", 1).where("revoked_at", "is", null).executeTakeFirstOrThrow();
        if (Number(admins.n) <= 1) throw new TempkubeError("conflict", `token ${id} is the last admin token; create another admin token before revoking it`);
      }
      await trx.updateTable("tokens").set({ revoked_at: now }).where("id", "=", id).execute();
      return fromTokenRow({ ...row, revoked_at: now });
    });
  }
}

/** A tenant token created without explicit limits: three clusters at once, any size, a day at most, not privileged. */
export const DEFAULT_TENANT_LIMITS: TokenLimits = { maxClusters: 3, maxTtlMinutes: 24 * 60, sizes: null, privileged: false };

/** The advisory lock key of `serialized` transactions: "tempkube" in ASCII, as a bigint. */
const WRITE_LOCK_KEY = BigInt("0x74656d706b756265").toString();

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

function refuseIf(refusal: Refusal | undefined): void {
  if (refusal) throw new TempkubeError(refusal.type, refusal.message);
}

/** Users' clusters that run or are on their way to running (the pool's are the operator's, not counted). */
async function runningCounts(trx: Transaction<Database>, owner: string): Promise<RunningCounts> {
  const rows = await trx.selectFrom("clusters").select(["owner"]).where("desired", "=", "running").where("pooled", "=", 0).execute();
  return { owner: rows.filter((r) => r.owner === owner).length, total: rows.length };
}

async function insertOutbox(trx: Transaction<Database>, messages: NewOutboxMessage[], now: number): Promise<void> {
  for (const m of messages) {
    await trx.insertInto("outbox").values({
      dedupe_key: m.dedupeKey, cluster_id: m.clusterId, event: m.event, channel: m.channel, recipient: m.recipient,
      payload: JSON.stringify(m.payload), attempts: 0, next_attempt_at: now, sent_at: null, last_error: null, created_at: now,
    }).onConflict((oc) => oc.column("dedupe_key").doNothing()).execute();
  }
}

function fromTokenRow(row: Omit<TokensTable, "id"> & { id: number }): TokenInfo {
  const admin = Number(row.admin) === 1;
  return {
    id: Number(row.id), name: row.name, admin, createdAt: Number(row.created_at), revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    limits: admin ? NO_LIMITS : {
      maxClusters: row.max_clusters === null ? null : Number(row.max_clusters),
      maxTtlMinutes: row.max_ttl_minutes === null ? null : Number(row.max_ttl_minutes),
      sizes: row.sizes ? JSON.parse(row.sizes) as string[] : null,
      privileged: Number(row.privileged) === 1,
    },
  };
}

function toRow(r: ClusterRecord): ClustersTable {
  return {
    id: r.id, owner: r.owner, name: r.name, spec: JSON.stringify(r.spec), keep: r.keep ? 1 : 0,
    notification_email: r.notificationEmail, desired: r.desired, phase: r.phase, ttl_minutes: r.ttlMinutes,
    expires_at: r.expiresAt, created_at: r.createdAt, updated_at: r.updatedAt, last_error: r.lastError,
    timings: JSON.stringify(r.timings), generation: r.generation,
    labels: JSON.stringify(r.labels), pooled: r.pooled ? 1 : 0,
  };
}

function fromOutboxRow(row: Omit<OutboxTable, "id"> & { id: number }): OutboxMessage {
  return {
    id: Number(row.id), dedupeKey: row.dedupe_key, clusterId: row.cluster_id, event: row.event, channel: row.channel as OutboxMessage["channel"],
    recipient: row.recipient, payload: JSON.parse(row.payload) as Record<string, unknown>, attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at), sentAt: row.sent_at === null ? null : Number(row.sent_at), lastError: row.last_error,
  };
}

function fromRow(row: ClustersTable): ClusterRecord {
  return {
    id: row.id, owner: row.owner, name: row.name, spec: JSON.parse(row.spec) as ClusterRecord["spec"], keep: Number(row.keep) === 1,
    notificationEmail: row.notification_email, desired: row.desired as ClusterRecord["desired"], phase: row.phase as ClusterRecord["phase"],
    ttlMinutes: Number(row.ttl_minutes), expiresAt: Number(row.expires_at), createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at), lastError: row.last_error, timings: JSON.parse(row.timings) as Record<string, number>,
    generation: Number(row.generation), labels: JSON.parse(row.labels) as Record<string, string>, pooled: Number(row.pooled) === 1,
  };
}
