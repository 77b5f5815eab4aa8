"""KFP v2 components: one thin file per stage, each calling one ``caig`` library function.

Every component takes the profile as one parameter (``Profile.to_dict()`` as JSON text, see
``caig.orchestration.params``), passes typed artifacts (``Dataset``, ``Model``, ``Metrics``, ``HTML``,
``Markdown``) and runs in one of our images (``caig.orchestration.images``). The code of each function
is embedded in the compiled pipeline, so it imports what it needs inside its body, from the ``caig``
package installed in the image.
"""
