// Reading stored records in tests, through the library's own codec.
import { decodePayload } from '../../src/codec.js';
import { parseRecord } from '../../src/record.js';

/** The session data of a stored record. */
export function decodeStored(raw: unknown): Record<string, unknown> {
  const record = parseRecord(raw);
  return decodePayload(record.payload, record.format);
}
