"""Board games for self-play: OpenSpiel's rules (``openspiel``), batched tree search
(``search``), the opponents an agent is measured against and matches (``players``)."""
