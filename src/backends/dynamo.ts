// DynamoDB through @keyv/dynamo's document client (`dynamodb://[key:secret@]host:port?region=...&table=...`).
import { missed, purgePages, QuietEmitter, type Backend, type CasResult, type ScannedPage } from './contract.js';
import { casStamp, recordExpiry } from '../record.js';
import { exportOf, type AnyModule } from './url.js';

interface DynamoOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly tableName: string;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Quirks fixed: no conditional write (here a conditional put); `clear()` fails past 25 items (never
 * called here); DynamoDB's own TTL deletes items up to days late (dynalite not at all), so expiry is
 * checked on read and purge scans by prefix; and the table check is retried (see #table).
 */
export class DynamoBackend extends QuietEmitter implements Backend {
  readonly #tableName: string;
  readonly #inner: AnyModule;
  #ready: Promise<void> | undefined;

  constructor(KeyvDynamo: AnyModule, options: DynamoOptions) {
    super();
    this.#tableName = options.tableName;
    this.#inner = new KeyvDynamo({ ...options, maxAttempts: 2 });
    this.#inner.on('error', this.report);
  }

  /**
   * The table exists. @keyv/dynamo checks (and creates) it once, in its constructor, and when that
   * fails (the endpoint is down at start-up) never again: every call would then fail for ever. Here
   * a failure is checked again on the next call.
   */
  #table(): Promise<void> {
    this.#ready ??= (async () => {
      await this.#inner.tableReady; // the constructor's attempt; its errors went to 'error'
      try {
        await this.#inner.ensureTable(this.#tableName);
      } catch {
        // dynalite rejects UpdateTimeToLive right after creating a table: a second look finds it there.
        await this.#inner.ensureTable(this.#tableName);
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async get(key: string): Promise<string | undefined> {
    await this.#table();
    return this.#inner.get(key);
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    await this.#table();
    await this.#inner.set(key, value, ttl);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    await this.#table();
    return this.#inner.delete(key);
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    await this.#table();
    const condition =
      expected === undefined ? { ConditionExpression: 'attribute_not_exists(id)' } : stampCondition(expected);
    try {
      await this.#inner.client.put({
        TableName: this.#tableName,
        Item: { id: key, value: next, expiresAt: Math.floor((Date.now() + ttl + 1000) / 1000) },
        ...condition,
      });
      return { status: 'saved' };
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      return missed(await this.get(key));
    }
  }

  /**
   * A page of the table's records under `prefix` (a DynamoDB Scan page, filtered: it may come back short, even empty).
   */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    await this.#table();
    const page = await this.#inner.client.scan({
      TableName: this.#tableName,
      FilterExpression: 'begins_with(id, :prefix)',
      ExpressionAttributeValues: { ':prefix': prefix },
      Limit: count,
      ...(cursor ? { ExclusiveStartKey: { id: cursor } } : {}),
    });
    const entries = (page.Items ?? []).map((item: AnyModule) => [String(item.id), String(item.value)] as const);
    return { entries, cursor: page.LastEvaluatedKey?.id };
  }

  /** Scans the table page by page for expired records under `prefix`, deleting each page's in batches of 25. */
  purgeExpired(prefix: string, now: number): Promise<number> {
    return purgePages(
      this,
      prefix,
      (value) => recordExpiry(value) <= now,
      async (keys) => {
        for (let i = 0; i < keys.length; i += 25) {
          const batch = keys.slice(i, i + 25);
          await this.#inner.client.batchWrite({
            RequestItems: { [this.#tableName]: batch.map((id) => ({ DeleteRequest: { Key: { id } } })) },
          });
        }
      },
    );
  }

  async close(): Promise<void> {
    this.#inner.client.destroy?.();
  }
}

/**
 * Without credentials in the URL or the environment, a loopback endpoint (dynalite, DynamoDB Local)
 * gets placeholder ones, so the SDK never goes looking for instance credentials over the network.
 */
function dynamoOptions(url: string): DynamoOptions {
  const parsed = new URL(url.replace(/^dynamodb:/i, 'http:'));
  const tls = parsed.searchParams.get('tls');
  const loopback = /^(127\.|localhost|\[::1\])/i.test(parsed.hostname);
  const endpoint = `${tls === 'true' || (tls === null && !loopback) ? 'https' : 'http'}://${parsed.host}`;
  const region = parsed.searchParams.get('region') ?? process.env.AWS_REGION ?? 'us-east-1';
  const tableName = parsed.searchParams.get('table') ?? 'keyv';
  if (parsed.username) {
    return {
      endpoint,
      region,
      tableName,
      credentials: {
        accessKeyId: decodeURIComponent(parsed.username),
        secretAccessKey: decodeURIComponent(parsed.password),
      },
    };
  }
  if (loopback && !process.env.AWS_ACCESS_KEY_ID)
    return { endpoint, region, tableName, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  return { endpoint, region, tableName };
}

/** `dynamodb://[key:secret@]host:port?region=...&table=...&tls=false`. */
export async function openDynamo(url: string, scheme: string): Promise<Backend> {
  return new DynamoBackend(await exportOf('@keyv/dynamo', scheme, 'KeyvDynamo'), dynamoOptions(url));
}

/**
 * The condition on the stored value: it starts with the record's header through its version token (a value that is not
 * a record: equals it).
 */
function stampCondition(expected: string) {
  const { stamp, whole } = casStamp(expected);
  return {
    ConditionExpression: whole ? '#v = :expected' : 'begins_with(#v, :expected)',
    ExpressionAttributeNames: { '#v': 'value' },
    ExpressionAttributeValues: { ':expected': stamp },
  };
}
