"""Learning-curve plots (pyqtgraph): CurvePanel, the stored-curve loader and CompareView's overlay."""
