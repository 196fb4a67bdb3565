import type { Transaction } from "kysely";
import type { ClusterRecord, SystemPurpose } from "../core/cluster-record.js";
import type { ChangeNotifications, OutgoingNotification } from "../core/notifications.js";
import type { Refusal, RunningCounts } from "../core/quota.js";
import { TempkubeError } from "../util/errors.js";
import { queueNotifications } from "./outbox.js";
import type { ClusterRow, Connection, Database } from "./schema.js";

/** Decides, inside the transaction that would add a running cluster, whether it may. */
export type Admission = (counts: RunningCounts) => Refusal | undefined;

export interface ClusterUpdate {
  /** The moment of the change: the record's `updatedAt` and the queued notifications' time. */
  now: number;
  /** What this change tells whom (core/notifications.ts), queued in the same transaction. */
  notify?: ChangeNotifications;
  /** Checked first, in the same transaction, when the change makes the cluster run again. */
  admit?: Admission;
  /** Why the change may not be made to the record as it is now (a conflict), checked in the same transaction. */
  conflict?: (current: ClusterRecord) => string | undefined;
}

/** The clusters table: users' clusters and the warm pool's. */
export class Clusters {
  constructor(private readonly connection: Connection) {}

  private get db() {
    return this.connection.db;
  }

  /**
   * Inserts a cluster; with `admit`, counts running clusters and inserts in one
   * transaction, so two concurrent creates cannot both take the last place.
   */
  async insert(r: ClusterRecord, admit?: Admission): Promise<void> {
    await this.connection.serialized(async (trx) => {
      if (admit) refuseIf(admit(await runningCounts(trx, r.owner)));
      await trx.insertInto("clusters").values(toRow(r)).execute();
    });
  }

  /**
   * Changes a cluster and queues the notifications that change causes, in one transaction:
   * a notification is never lost to a crash between the two, and a dedupe key that was
   * queued before is ignored, so an event is never queued twice.
   */
  async update(
    id: string,
    changes: Partial<ClusterRecord>,
    { now, notify, admit, conflict }: ClusterUpdate,
  ): Promise<ClusterRecord> {
    return this.connection.serialized(async (trx) => {
      const row = await trx.selectFrom("clusters").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `cluster ${id} not found`);
      const previous = fromRow(row);
      const conflicting = conflict?.(previous);
      if (conflicting) throw new TempkubeError("conflict", conflicting);
      if (admit) refuseIf(admit(await runningCounts(trx, previous.owner)));
      const next = { ...previous, ...changes, updatedAt: now };
      await trx.updateTable("clusters").set(toRow(next)).where("id", "=", id).execute();
      await queueNotifications(trx, notify ? notify(next, previous) : [], now);
      return next;
    });
  }

  async get(id: string): Promise<ClusterRecord | undefined> {
    const row = await this.db.selectFrom("clusters").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Users' clusters and the server's own (the warm pool's are not listed), or one owner's: the
   * server's own are nobody's, so never among an owner's.
   */
  async list(owner?: string): Promise<ClusterRecord[]> {
    let q = this.db.selectFrom("clusters").selectAll().where("pooled", "=", 0).orderBy("created_at");
    if (owner !== undefined) q = q.where("owner", "=", owner).where("system", "is", null);
    return (await q.execute()).map(fromRow);
  }

  /** The server's own cluster for this purpose that is not (on its way to being) terminated, if any. */
  async system(purpose: SystemPurpose): Promise<ClusterRecord | undefined> {
    const row = await this.db
      .selectFrom("clusters")
      .selectAll()
      .where("system", "=", purpose)
      .where("desired", "!=", "terminated")
      .orderBy("created_at")
      .executeTakeFirst();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Makes the server's own cluster for `record.system`, unless one is there already (then that
   * one is returned, `made` false): one transaction, so two servers on one PostgreSQL database
   * (or two calls) never make two. With `fromPool`, a ready pool cluster it matches becomes it
   * (claimed as a user's create claims one); otherwise `record` is inserted. `admit` decides
   * either way, as for a user's cluster: it takes a place on the host.
   */
  async insertSystem(
    record: ClusterRecord & { system: SystemPurpose },
    admit: Admission,
    fromPool?: { match: (r: ClusterRecord) => boolean; claim: (r: ClusterRecord) => ClusterRecord },
  ): Promise<{ record: ClusterRecord; made: boolean }> {
    return this.connection.serialized(async (trx) => {
      const existing = await trx
        .selectFrom("clusters")
        .selectAll()
        .where("system", "=", record.system)
        .where("desired", "!=", "terminated")
        .orderBy("created_at")
        .executeTakeFirst();
      if (existing) return { record: fromRow(existing), made: false };
      const pooled = fromPool
        ? (
            await trx
              .selectFrom("clusters")
              .selectAll()
              .where("pooled", "=", 1)
              .where("phase", "=", "running")
              .where("desired", "=", "running")
              .orderBy("created_at")
              .execute()
          )
            .map(fromRow)
            .find(fromPool.match)
        : undefined;
      const next = pooled && fromPool ? fromPool.claim(pooled) : record;
      refuseIf(admit(await runningCounts(trx, next.owner)));
      if (pooled) {
        await trx
          .updateTable("clusters")
          .set(toRow(next))
          .where("id", "=", pooled.id)
          .where("pooled", "=", 1)
          .execute();
      } else {
        await trx.insertInto("clusters").values(toRow(next)).execute();
      }
      return { record: next, made: true };
    });
  }

  /** Every cluster the controller must reconcile: users' and the warm pool's. */
  async all(): Promise<ClusterRecord[]> {
    return (await this.db.selectFrom("clusters").selectAll().orderBy("created_at").execute()).map(fromRow);
  }

  /**
   * Hands a running pool cluster of this shape to a user, in one transaction with the
   * admission check: the record becomes theirs (owner, lifetime, labels) and leaves the pool.
   * Undefined when the pool has none ready.
   */
  async claimPooled(
    match: (r: ClusterRecord) => boolean,
    claim: (r: ClusterRecord) => ClusterRecord,
    admit: Admission,
    notify: (next: ClusterRecord) => OutgoingNotification[],
  ): Promise<ClusterRecord | undefined> {
    return this.connection.serialized(async (trx) => {
      const rows = await trx
        .selectFrom("clusters")
        .selectAll()
        .where("pooled", "=", 1)
        .where("phase", "=", "running")
        .where("desired", "=", "running")
        .orderBy("created_at")
        .execute();
      const candidate = rows.map(fromRow).find(match);
      if (!candidate) return undefined;
      const next = claim(candidate);
      refuseIf(admit(await runningCounts(trx, next.owner)));
      await trx
        .updateTable("clusters")
        .set(toRow(next))
        .where("id", "=", candidate.id)
        .where("pooled", "=", 1)
        .execute();
      await queueNotifications(trx, notify(next), next.updatedAt);
      return next;
    });
  }
}

function refuseIf(refusal: Refusal | undefined): void {
  if (refusal) throw new TempkubeError(refusal.type, refusal.message);
}

/**
 * Users' clusters that run or are on their way to running (and of them, the frozen), and apart from them the warm pool's
 * (nobody's, but they hold room on the host); sleeping ones count for their owner, not for the
 * host (core/quota.ts RunningCounts; core/warm-pool.ts hostLoad counts the same way). The
 * server's own clusters (owner "", never an owner's) count in `total`: they hold a place too.
 */
async function runningCounts(trx: Transaction<Database>, owner: string): Promise<RunningCounts> {
  const rows = await trx
    .selectFrom("clusters")
    .select(["owner", "phase", "pooled", "frozen_at"])
    .where("desired", "=", "running")
    .execute();
  const users = rows.filter((r) => Number(r.pooled) !== 1);
  return {
    owner: users.filter((r) => r.owner === owner).length,
    total: users.filter((r) => r.phase !== "sleeping").length,
    pooled: rows.length - users.length,
    frozen: users.filter((r) => r.phase === "running" && r.frozen_at !== null).length,
  };
}

function toRow(r: ClusterRecord): ClusterRow {
  return {
    id: r.id,
    owner: r.owner,
    name: r.name,
    spec: JSON.stringify(r.spec),
    keep: r.keep ? 1 : 0,
    notification_email: r.notificationEmail,
    desired: r.desired,
    phase: r.phase,
    ttl_minutes: r.ttlMinutes,
    expires_at: r.expiresAt,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    last_error: r.lastError,
    timings: JSON.stringify(r.timings),
    generation: r.generation,
    labels: JSON.stringify(r.labels),
    pooled: r.pooled ? 1 : 0,
    idle_minutes: r.idleMinutes,
    running_since: r.runningSince,
    slept_at: r.sleptAt,
    frozen_at: r.frozenAt,
    system: r.system ?? null,
  };
}

function fromRow(row: ClusterRow): ClusterRecord {
  return {
    id: row.id,
    owner: row.owner,
    name: row.name,
    spec: JSON.parse(row.spec) as ClusterRecord["spec"],
    keep: Number(row.keep) === 1,
    notificationEmail: row.notification_email,
    desired: row.desired as ClusterRecord["desired"],
    phase: row.phase as ClusterRecord["phase"],
    ttlMinutes: Number(row.ttl_minutes),
    expiresAt: Number(row.expires_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    lastError: row.last_error,
    timings: JSON.parse(row.timings) as Record<string, number>,
    generation: Number(row.generation),
    labels: JSON.parse(row.labels) as Record<string, string>,
    pooled: Number(row.pooled) === 1,
    idleMinutes: Number(row.idle_minutes),
    runningSince: row.running_since === null ? null : Number(row.running_since),
    sleptAt: row.slept_at === null ? null : Number(row.slept_at),
    frozenAt: row.frozen_at === null ? null : Number(row.frozen_at),
    ...(row.system ? { system: row.system as SystemPurpose } : {}),
  };
}
