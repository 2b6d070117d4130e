/**
 * The host protocol's messages (declared in core/host-protocol.ts, which the service and the hosts
 * share), and the answer of the order poll.
 */
import type { Order } from '../core/host-protocol.ts';

export type {
  DataLossDecision, Order, PartitionState, RegisteredPartition, RegisteredService, Registration, Report, StoredBackupSummary,
} from '../core/host-protocol.ts';

/** GET /Lifeboat/Hosts/{hostId}/$/Orders answers this. */
export interface OrdersWire {
  Orders: Order[];
}
