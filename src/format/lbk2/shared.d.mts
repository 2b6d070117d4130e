/** Types of shared.mjs: places in shared regions, for the block pool's messages. */

/** A view on a shared region, as a message carries it. */
export interface SharedPlace {
  readonly shared: number;
  readonly at: number;
  readonly length: number;
}

export declare function toShared<T extends object>(message: T, idOf: (region: SharedArrayBuffer) => number | undefined): Record<string, unknown>;
export declare function fromShared(message: Record<string, unknown>, regionOf: (id: number) => SharedArrayBuffer | undefined): Record<string, unknown>;
