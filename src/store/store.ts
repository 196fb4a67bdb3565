import { createHash, randomBytes } from "node:crypto";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, type Generated, type Migration, type MigrationProvider } from "kysely";
import type { ClusterRecord } from "../core/cluster-record.js";
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
}

interface TokensTable {
  id: Generated<number>;
  name: string;
  hash: string;
  admin: number;
  created_at: number;
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
};

class InlineMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
  }
}

export interface TokenIdentity {
  id: number;
  name: string;
  admin: boolean;
}

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

  async insertCluster(r: ClusterRecord): Promise<void> {
    await this.db.insertInto("clusters").values(toRow(r)).execute();
  }

  /**
   * Changes a cluster and queues the notifications that change causes, in one transaction:
   * a notification is never lost to a crash between the two, and a dedupe key that was
   * queued before is ignored, so an event is never queued twice.
   */
  async updateCluster(id: string, changes: Partial<ClusterRecord>, now: number,
    notify: (next: ClusterRecord, previous: ClusterRecord) => NewOutboxMessage[] = () => []): Promise<ClusterRecord> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom("clusters").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `cluster ${id} not found`);
      const previous = fromRow(row);
      const next = { ...previous, ...changes, updatedAt: now };
      await trx.updateTable("clusters").set(toRow(next)).where("id", "=", id).execute();
      for (const m of notify(next, previous)) {
        await trx.insertInto("outbox").values({
          dedupe_key: m.dedupeKey, cluster_id: m.clusterId, event: m.event, channel: m.channel, recipient: m.recipient,
          payload: JSON.stringify(m.payload), attempts: 0, next_attempt_at: now, sent_at: null, last_error: null, created_at: now,
        }).onConflict((oc) => oc.column("dedupe_key").doNothing()).execute();
      }
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

  async listClusters(owner?: string): Promise<ClusterRecord[]> {
    let q = this.db.selectFrom("clusters").selectAll().orderBy("created_at");
    if (owner !== undefined) q = q.where("owner", "=", owner);
    return (await q.execute()).map(fromRow);
  }

  // ---- tokens

  /** Creates a token; the secret is returned once and only its hash is stored. */
  async createToken(name: string, admin: boolean, now: number): Promise<{ token: string; identity: TokenIdentity }> {
    const token = `tk_${randomBytes(24).toString("base64url")}`;
    const res = await this.db.insertInto("tokens").values({ name, hash: hashToken(token), admin: admin ? 1 : 0, created_at: now })
      .returning("id").executeTakeFirstOrThrow();
    return { token, identity: { id: Number(res.id), name, admin } };
  }

  async identify(token: string): Promise<TokenIdentity | undefined> {
    const row = await this.db.selectFrom("tokens").selectAll().where("hash", "=", hashToken(token)).executeTakeFirst();
    return row ? { id: Number(row.id), name: row.name, admin: row.admin === 1 } : undefined;
  }
}

function toRow(r: ClusterRecord): ClustersTable {
  return {
    id: r.id, owner: r.owner, name: r.name, spec: JSON.stringify(r.spec), keep: r.keep ? 1 : 0,
    notification_email: r.notificationEmail, desired: r.desired, phase: r.phase, ttl_minutes: r.ttlMinutes,
    expires_at: r.expiresAt, created_at: r.createdAt, updated_at: r.updatedAt, last_error: r.lastError,
    timings: JSON.stringify(r.timings), generation: r.generation,
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
    generation: Number(row.generation),
  };
}
