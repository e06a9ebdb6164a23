// The bus a command uses: NATS when servers are configured, else the in-process bus; either one signs what
// it publishes and checks what it delivers with `keys` (controlplane/signing.ts).
import { InProcessBus, type Bus } from './bus.js';
import type { NatsConfig } from './nats-config.js';
import type { BusKeys } from './signing.js';

export async function openBus(nats: NatsConfig | undefined, keys: BusKeys): Promise<Bus> {
  if (!nats) return new InProcessBus(keys);
  const { NatsBus } = await import('./nats-bus.js'); // the NATS client is loaded only when it is used
  return NatsBus.connect(nats, keys);
}
