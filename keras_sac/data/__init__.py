"""The data an agent learns from: the replay buffers (n-step, several envs' rings), hindsight relabelling and
the collection of transitions from one env or several."""
