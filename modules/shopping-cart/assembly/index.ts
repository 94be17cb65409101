// The event-sourced shopping cart (contract: shared/contracts/shoppingcart.proto).
// Commands validate and emit events; event handlers fold them into the Cart state.
import { CommandContext, Status, register } from "keystate-guest-sdk/assembly/index";
import { AddLineItem, Cart, Empty, GetShoppingCart, ItemAdded, ItemRemoved, LineItem, RemoveLineItem } from "./generated/messages";
import { ShoppingCartEntity } from "./generated/handlers";

class ShoppingCart extends ShoppingCartEntity {
  addItem(command: AddLineItem, state: Cart, ctx: CommandContext): Empty | null {
    if (command.quantity < 1) {
      ctx.fail(Status.INVALID_ARGUMENT, "quantity for item " + command.productId + " must be at least 1");
      return null;
    }
    if (command.productId.length == 0) {
      ctx.fail(Status.INVALID_ARGUMENT, "product_id must not be empty");
      return null;
    }
    const item = new LineItem();
    item.productId = command.productId;
    item.name = command.name;
    item.quantity = command.quantity;
    const event = new ItemAdded();
    event.item = item;
    ctx.emit(event);
    return new Empty();
  }

  removeItem(command: RemoveLineItem, state: Cart, ctx: CommandContext): Empty | null {
    if (indexOf(state, command.productId) < 0) {
      ctx.fail(Status.NOT_FOUND, "item " + command.productId + " is not in the cart");
      return null;
    }
    const event = new ItemRemoved();
    event.productId = command.productId;
    ctx.emit(event);
    return new Empty();
  }

  getCart(command: GetShoppingCart, state: Cart, ctx: CommandContext): Cart | null {
    return state;
  }

  onItemAdded(event: ItemAdded, state: Cart): Cart {
    const added = event.item!;
    const at = indexOf(state, added.productId);
    if (at >= 0) {
      // Same product again: one line, quantities add up, first name and position kept.
      state.items[at].quantity += added.quantity;
    } else {
      state.items.push(added);
    }
    return state;
  }

  onItemRemoved(event: ItemRemoved, state: Cart): Cart {
    const at = indexOf(state, event.productId);
    if (at >= 0) state.items.splice(at, 1);
    return state;
  }
}

function indexOf(cart: Cart, productId: string): i32 {
  for (let i = 0; i < cart.items.length; i++) {
    if (cart.items[i].productId == productId) return i;
  }
  return -1;
}

register(new ShoppingCart());
