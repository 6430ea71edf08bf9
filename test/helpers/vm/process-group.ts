/** Moved to src/vm/process-group.ts (the product's `demo --vm` uses it); kept for bench/vm.ts. */
export * from '../../../src/vm/process-group.js';
