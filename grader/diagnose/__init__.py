"""Diagnosis: the mistake behind a source's failing checks, and the layer where it enters (DESIGN §7).

    diagnosis.py        `diagnose`, what the check stage calls: mutants first, then the chain rule's relations
    mutants.py          which catalogued mistake, or pair of mistakes, explains the failing quantities
    chain.py            one trial's chain rule laid out relation by relation (shared by every student of a class)
    localize.py         walks a student's backward pass from the output down to the first relation that breaks
    localize_layer.py   one layer's relations: what each stand-in students use predicts for dW_l and db_l
    localize_text.py    what a localization says to the student, and the catalogue ids of the break

The catalogue of mistakes itself (the mutants of the reference) is `reference/mistakes*.py`.
"""
