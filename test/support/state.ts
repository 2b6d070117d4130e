/** Helpers for tests of the state library. */
import { StatefulService, type ServiceOptions } from '../../src/state/index.ts';
import type { Partition } from '../../src/state/index.ts';

export async function openSingleton(dataDir: string, extra: Partial<ServiceOptions> = {}): Promise<{ service: StatefulService; partition: Partition }> {
  const service = await StatefulService.open({ name: 'fabric:/App/Svc', partitioning: { kind: 'Singleton' }, dataDir, ...extra });
  return { service, partition: service.partitionList[0] as Partition };
}

/** Every dictionary's entries, as plain JSON-comparable data (bytes as hex). */
export function dump(p: Partition): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of p.dictionaryNames()) {
    const d: Record<string, unknown> = {};
    for (const { key, value } of p.dictionary(name).enumerate()) d[key] = value instanceof Uint8Array ? `hex:${Buffer.from(value).toString('hex')}` : value;
    out[name] = d;
  }
  return out;
}
