import { createHash, randomBytes } from "node:crypto";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, type Generated, type Migration, type MigrationProvider, type Transaction } from "kysely";
import type { ClusterRecord } from "../core/cluster-record.js";
import { NO_LIMITS, type Refusal, type RunningCounts, type TokenIdentity, type TokenLimits } from "../core/quota.js";
import { TempkubeError } from "../util/errors.js";

/**
 * The service's store. SQLite in the data directory by default (one file, embedded).
 * One query layer (Kysely) so PostgreSQL can take its place for several replicas.
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

const MIGRATIONS: Record<string, Migration> = {
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
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
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
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
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

class InlineMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
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
  private constructor(private readonly db: Kysely<Database>) {}

  static async openSqlite(file: string): Promise<Store> {
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(file) }) });
    const store = new Store(db);
    await store.migrate();
    return store;
  }

  private async migrate(): Promise<void> {
    const { error } = await new Migrator({ db: this.db, provider: new InlineMigrations() }).migrateToLatest();
    if (error) throw new TempkubeError("runtime", `store migration failed: ${String(error)}`);
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
    await this.db.transaction().execute(async (trx) => {
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
    return this.db.transaction().execute(async (trx) => {
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
    return this.db.transaction().execute(async (trx) => {
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
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `token ${id} not found`);
      if (row.revoked_at !== null) throw new TempkubeError("conflict", `token ${id} is already revoked`);
      if (row.admin === 1) {
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
  const admin = row.admin === 1;
  return {
    id: Number(row.id), name: row.name, admin, createdAt: Number(row.created_at), revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    limits: admin ? NO_LIMITS : {
      maxClusters: row.max_clusters === null ? null : Number(row.max_clusters),
      maxTtlMinutes: row.max_ttl_minutes === null ? null : Number(row.max_ttl_minutes),
      sizes: row.sizes ? JSON.parse(row.sizes) as string[] : null,
      privileged: row.privileged === 1,
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
    id: row.id, owner: row.owner, name: row.name, spec: JSON.parse(row.spec) as ClusterRecord["spec"], keep: row.keep === 1,
    notificationEmail: row.notification_email, desired: row.desired as ClusterRecord["desired"], phase: row.phase as ClusterRecord["phase"],
    ttlMinutes: Number(row.ttl_minutes), expiresAt: Number(row.expires_at), createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at), lastError: row.last_error, timings: JSON.parse(row.timings) as Record<string, number>,
    generation: Number(row.generation), labels: JSON.parse(row.labels) as Record<string, string>, pooled: Number(row.pooled) === 1,
  };
}
