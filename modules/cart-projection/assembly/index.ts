// The cart projection (contract: proto/cart_projection.proto): per product, the units in
// shopping carts and the number of carts holding it, built from the shopping cart's events.
//
// CartEvents (a stateless action) is the event-log subscriber: for each event it sends one
// asynchronous side effect to the ProductTotals value entity of the event's product. The
// side effect is stored with an id derived from the delivery's idempotency key, so a
// redelivered event (after a crash before its offset was stored) stores the same effect
// again and ProductTotals applies it once. Side effects may land out of order, so
// ProductTotals folds them by the cart's sequence numbers: an addition older than the
// cart's latest removal of the product no longer counts, whenever it arrives.
import { ActionContext, Status, ValueContext, register } from "keystate-guest-sdk/assembly/index";
import { Addition, CartLine, CartLineAdded, CartLineRemoved, Empty, GetProductTotals, ItemAdded, ItemRemoved, ProductState, Totals } from "./generated/messages";
import { CartEventsAction, ProductTotalsEntity } from "./generated/handlers";
import { ProductTotalsCalls } from "./generated/calls";

class CartEvents extends CartEventsAction {
  onItemAdded(event: ItemAdded, ctx: ActionContext): Empty | null {
    const item = event.item;
    if (item === null || !delivered(ctx)) return null;
    const change = new CartLineAdded();
    change.productId = item.productId;
    change.cartId = ctx.metadata("ce-subject")!;
    change.seq = I64.parseInt(ctx.metadata("ce-sequence")!);
    change.quantity = item.quantity;
    ProductTotalsCalls.sideEffectApplyAdded(ctx, change);
    return new Empty();
  }

  onItemRemoved(event: ItemRemoved, ctx: ActionContext): Empty | null {
    if (!delivered(ctx)) return null;
    const change = new CartLineRemoved();
    change.productId = event.productId;
    change.cartId = ctx.metadata("ce-subject")!;
    change.seq = I64.parseInt(ctx.metadata("ce-sequence")!);
    ProductTotalsCalls.sideEffectApplyRemoved(ctx, change);
    return new Empty();
  }
}

/** True for a subscription's delivery (it names the cart and the event's sequence number); otherwise fails the call. */
function delivered(ctx: ActionContext): bool {
  if (ctx.metadata("ce-subject") !== null && ctx.metadata("ce-sequence") !== null) return true;
  ctx.fail(Status.INVALID_ARGUMENT, "CartEvents takes the shopping cart's events from its event-log subscription (ce-subject and ce-sequence missing)");
  return false;
}

class ProductTotals extends ProductTotalsEntity {
  getProduct(command: GetProductTotals, state: ProductState, ctx: ValueContext<ProductState>): Totals | null {
    const totals = new Totals();
    totals.productId = command.productId;
    for (let i = 0; i < state.lines.length; i++) {
      const units = unitsOf(state.lines[i]);
      totals.quantity += units;
      if (units > 0) totals.carts += 1;
    }
    return totals;
  }

  applyAdded(change: CartLineAdded, state: ProductState, ctx: ValueContext<ProductState>): Empty | null {
    const line = lineOf(state, change.cartId);
    // Added before the cart's latest removal of this product (that side effect landed first): cleared by it.
    if (change.seq < line.removedAt) return new Empty();
    const addition = new Addition();
    addition.seq = change.seq;
    addition.quantity = change.quantity;
    line.additions.push(addition);
    ctx.updateState(state);
    return new Empty();
  }

  applyRemoved(change: CartLineRemoved, state: ProductState, ctx: ValueContext<ProductState>): Empty | null {
    const line = lineOf(state, change.cartId);
    if (change.seq <= line.removedAt) return new Empty();
    line.removedAt = change.seq;
    // Additions after the removal (landed before it) still count; the line stays as a marker
    // so an older addition arriving late is recognised.
    const kept = new Array<Addition>();
    for (let i = 0; i < line.additions.length; i++) {
      if (line.additions[i].seq > change.seq) kept.push(line.additions[i]);
    }
    line.additions = kept;
    ctx.updateState(state);
    return new Empty();
  }
}

/** The cart's line in `state`, added (empty) when the cart has none yet. */
function lineOf(state: ProductState, cartId: string): CartLine {
  for (let i = 0; i < state.lines.length; i++) {
    if (state.lines[i].cartId == cartId) return state.lines[i];
  }
  const line = new CartLine();
  line.cartId = cartId;
  state.lines.push(line);
  return line;
}

function unitsOf(line: CartLine): i64 {
  let units: i64 = 0;
  for (let i = 0; i < line.additions.length; i++) units += line.additions[i].quantity;
  return units;
}

register(new CartEvents());
register(new ProductTotals());
