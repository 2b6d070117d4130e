export * from './errors.ts';
export * from './epoch.ts';
export * from './keys.ts';
export * from './names.ts';
export * from './partitioning.ts';
export * from './backup-chain.ts';
