import { Clusters } from "./clusters.js";
import { Outbox } from "./outbox.js";
import { Connection, type StoreDialect } from "./schema.js";
import { Tokens } from "./tokens.js";

export type { Admission, ClusterUpdate } from "./clusters.js";
export type { OutboxMessage } from "./outbox.js";
export { type StoreDialect } from "./schema.js";
export type { TokenInfo } from "./tokens.js";

/**
 * The service's store: one connection (SQLite by default, or PostgreSQL; schema.ts), one
 * object per table. Writes that must decide and change together (admission, claims, the
 * notifications a change causes) are one transaction inside a table's method.
 */
export class Store {
  readonly clusters: Clusters;
  readonly tokens: Tokens;
  readonly outbox: Outbox;

  private constructor(private readonly connection: Connection) {
    this.clusters = new Clusters(connection);
    this.tokens = new Tokens(connection);
    this.outbox = new Outbox(connection);
  }

  /** PostgreSQL for a postgres:// or postgresql:// URL, otherwise SQLite in that file. */
  static async open(urlOrFile: string): Promise<Store> {
    return new Store(await Connection.open(urlOrFile));
  }

  static async openSqlite(file: string): Promise<Store> {
    return new Store(await Connection.openSqlite(file));
  }

  static async openPostgres(url: string): Promise<Store> {
    return new Store(await Connection.openPostgres(url));
  }

  get dialect(): StoreDialect {
    return this.connection.dialect;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
