// Run-time choices as compile-time constants, so kernels are specialised per choice.
#pragma once

#include <type_traits>

namespace i2i_fast {

// Calls f(std::integral_constant<E, v>{}) for the one v among `values` equal to `value` (nothing
// when none is: callers pass every value their checks accept).
template <typename E, E... values, typename F>
void dispatch_constant(E value, F&& f) {
  (void)((value == values ? (f(std::integral_constant<E, values>{}), true) : false) || ...);
}

}  // namespace i2i_fast
