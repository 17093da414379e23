import { MemoryStore } from '../../src/store/memory.js';
import { storeConformance } from '../conformance/store.js';

storeConformance('MemoryStore', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});
