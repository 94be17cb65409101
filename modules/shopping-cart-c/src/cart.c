// The event-sourced shopping cart in C: the same behaviour as the AssemblyScript cart
// (modules/shopping-cart/assembly/index.ts) behind the same contract
// (proto/shoppingcart.proto, shared with it). Commands validate and emit events; event
// handlers fold them into the Cart state. Everything lives in the call's arena.
#include <string.h>

#include "handlers.h"

static Empty empty_reply;

// The line of `product_id`, or -1.
static int32_t index_of(const Cart *cart, ks_str product_id) {
  for (uint32_t i = 0; i < cart->items_count; i++) {
    if (ks_str_eq(cart->items[i].product_id, product_id)) return (int32_t)i;
  }
  return -1;
}

Empty *ShoppingCart_AddItem(const AddLineItem *command, Cart *state, ks_context *ctx) {
  (void)state;
  if (command->quantity < 1) {
    ks_fail(ctx, KS_INVALID_ARGUMENT, "quantity for item %.*s must be at least 1", KS_STR_ARGS(command->product_id));
    return NULL;
  }
  if (command->product_id.len == 0) {
    ks_fail(ctx, KS_INVALID_ARGUMENT, "product_id must not be empty");
    return NULL;
  }
  LineItem item = {.product_id = command->product_id, .name = command->name, .quantity = command->quantity};
  ItemAdded event = {.item = &item};
  emit_ItemAdded(ctx, &event);
  return &empty_reply;
}

Empty *ShoppingCart_RemoveItem(const RemoveLineItem *command, Cart *state, ks_context *ctx) {
  if (index_of(state, command->product_id) < 0) {
    ks_fail(ctx, KS_NOT_FOUND, "item %.*s is not in the cart", KS_STR_ARGS(command->product_id));
    return NULL;
  }
  ItemRemoved event = {.product_id = command->product_id};
  emit_ItemRemoved(ctx, &event);
  return &empty_reply;
}

Cart *ShoppingCart_GetCart(const GetShoppingCart *command, Cart *state, ks_context *ctx) {
  (void)command;
  (void)ctx;
  return state;
}

Cart *ShoppingCart_on_ItemAdded(const ItemAdded *event, Cart *state) {
  if (!event->item) return NULL;  // an ItemAdded without its line cannot be applied
  int32_t at = index_of(state, event->item->product_id);
  if (at >= 0) {
    // Same product again: one line, quantities add up, first name and position kept.
    state->items[at].quantity += event->item->quantity;
  } else {
    *Cart_add_items(state) = *event->item;
  }
  return state;
}

Cart *ShoppingCart_on_ItemRemoved(const ItemRemoved *event, Cart *state) {
  int32_t at = index_of(state, event->product_id);
  if (at >= 0) {
    memmove(&state->items[at], &state->items[at + 1], (state->items_count - (uint32_t)at - 1) * sizeof *state->items);
    state->items_count--;
  }
  return state;
}
