"""Result directories (atomic, with a manifest), the equilibrium cache and figures."""
