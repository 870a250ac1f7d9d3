/**
 * Admission control for the DICOM listener: how many associations the node holds in all, per
 * calling AE title and per peer address, and how many TCP connections an address keeps open
 * without an association (waiting for its A-ASSOCIATE-RQ, or lingering after a rejection or
 * release until ARTIM closes them). The per-AE and per-address shares keep one peer, hostile or
 * broken, from taking every slot of the global limit.
 */

export interface AdmissionLimits {
  maxAssociations: number;
  maxPerAe: number;
  maxPerAddress: number;
}

/** Why an association was not admitted (A-ASSOCIATE-RJ transient, local limit exceeded). */
export type LimitReason = 'global-limit' | 'ae-limit' | 'address-limit';

/** An admitted association's slot; `release` may be called any number of times and frees it once. */
export interface Slot {
  release(): void;
}

function inc(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

export class Admission {
  private active = 0;
  private readonly byAe = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();
  /** Open TCP connections per address, with or without an association. */
  private readonly connections = new Map<string, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  get activeAssociations(): number {
    return this.active;
  }

  /**
   * A new TCP connection. False when the address already keeps `maxPerAddress` connections that
   * hold no association: the caller destroys it at once. Otherwise the caller must call the
   * returned function exactly when the connection closes.
   */
  connectionOpened(address: string): (() => void) | false {
    const idle = (this.connections.get(address) ?? 0) - (this.byAddress.get(address) ?? 0);
    if (idle >= this.limits.maxPerAddress) return false;
    inc(this.connections, address, 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      inc(this.connections, address, -1);
    };
  }

  /** A slot for an association of `ae` from `address`, or the limit it would exceed. */
  admit(ae: string, address: string): Slot | LimitReason {
    if (this.active >= this.limits.maxAssociations) return 'global-limit';
    if ((this.byAe.get(ae) ?? 0) >= this.limits.maxPerAe) return 'ae-limit';
    if ((this.byAddress.get(address) ?? 0) >= this.limits.maxPerAddress) return 'address-limit';
    this.active++;
    inc(this.byAe, ae, 1);
    inc(this.byAddress, address, 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.active--;
        inc(this.byAe, ae, -1);
        inc(this.byAddress, address, -1);
      },
    };
  }
}
